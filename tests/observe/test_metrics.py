"""``status_listen``: counters summed over the workers in the master's shared memory,
surviving a worker's death; ``/metrics`` as Prometheus reads it (a real Prometheus
scraping it, ``promtool check metrics``); ``/healthz`` 503 while the node drains;
``status_allow``; the embedding API's ``stats()``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.process.conftest import WAIT, children, imap_session, wait_for
from tests.support.clients import imap_login, open_imap
from tests.support.configs import STANDARD
from tests.support.procs import ServerProcess, wait_for_listen
from tests.support.users import ALICE


def get(url: str, accept: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict:
    """(name, sorted labels) -> value of every sample of a Prometheus text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def start_node(mg, backend, *, extra: str = "", workers: int = 2) -> tuple[int, int]:
    """The binary with an IMAP server and status_listen; (imap port, status port)."""
    status = mg.port()
    port = mg.write_imap(auth_http="127.0.0.1:%d/auth" % backend.auth.port, workers=workers,
                         extra="status_listen 127.0.0.1:%d;\n%s" % (status, extra))
    mg.start()
    wait_for_listen([("127.0.0.1", status)], timeout=WAIT)
    return port, status


def login(port: int, backend) -> None:
    with open_imap("127.0.0.1", port) as imap:
        imap.login(backend.USER, backend.PASSWORD)
        imap.select("INBOX", readonly=True)


def status_json(status: int) -> dict:
    code, body = get("http://127.0.0.1:%d/status.json" % status)
    assert code == 200
    return json.loads(body)


def test_counts_summed_over_workers_and_kept_across_a_worker_death(mailgate_instance, backend):
    mg = mailgate_instance
    port, status = start_node(mg, backend)
    for _ in range(6):
        login(port, backend)
    wait_for(lambda: status_json(status)["stats"]["sessions"]["imap"]["proxied"] == 6,
             "six proxied sessions")
    held = imap_session(port)  # open, past the greeting: one active session
    wait_for(lambda: status_json(status)["stats"]["sessions_active"]["imap"] == 1, "one active")
    facts = status_json(status)
    assert len(facts["workers"]) == 2 and all(w["rss_bytes"] > 1 << 20 for w in facts["workers"])
    assert facts["stats"]["auth"]["imap"]["ok"] == 6
    backends = facts["stats"]["backends"]
    assert [b["sessions"] for b in backends.values()] == [6] and facts["draining"] is False

    old = set(mg.workers())
    for pid in old:  # both workers die; the master replaces them in their slots
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(set(mg.workers()) - old) == 2, "two new workers")
    held.close()
    wait_for(lambda: status_json(status)["stats"]["sessions_active"]["imap"] == 0,
             "no active session")
    stats = status_json(status)["stats"]
    assert stats["sessions"]["imap"]["proxied"] == 6 and stats["sessions"]["imap"]["lost"] == 1
    assert stats["backend_connections"] == 0 and stats["auth_http_in_flight"] == 0
    login(port, backend)  # the new workers count on from the old counts
    wait_for(lambda: status_json(status)["stats"]["sessions"]["imap"]["proxied"] == 7, "seven")

    code, text = get("http://127.0.0.1:%d/metrics" % status)
    assert code == 200
    found = samples(text)
    assert found["mailgate_sessions_total", (("outcome", "proxied"), ("protocol", "imap"))] == 7
    assert found["mailgate_sessions_total", (("outcome", "lost"), ("protocol", "imap"))] == 1
    assert found["mailgate_auth_total", (("protocol", "imap"), ("result", "ok"))] == 7
    assert found["mailgate_workers", ()] == 2
    assert found["mailgate_auth_http_duration_seconds_count", ()] == 7
    assert found["mailgate_bytes_total", (("direction", "backend_to_client"),)] > 0
    code, text = get("http://127.0.0.1:%d/metrics" % status,
                     accept="application/openmetrics-text; version=1.0.0")
    assert code == 200 and text.rstrip().endswith("# EOF")


@pytest.mark.requires("prometheus")
def test_promtool_checks_the_metrics(mailgate_instance, backend):
    mg = mailgate_instance
    port, status = start_node(mg, backend)
    login(port, backend)
    _, text = get("http://127.0.0.1:%d/metrics" % status)
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                             capture_output=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.requires("prometheus")
def test_prometheus_scrapes_the_node(mailgate_instance, backend, tmp_path, port_allocator):
    mg = mailgate_instance
    port, status = start_node(mg, backend)
    web = port_allocator.port()
    (tmp_path / "prometheus.yml").write_text(
        "global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
        "scrape_configs:\n"
        "  - job_name: mailgate\n"
        "    static_configs: [ { targets: ['127.0.0.1:%d'] } ]\n" % status)
    prometheus = ServerProcess(
        ["prometheus", "--config.file", tmp_path / "prometheus.yml",
         "--storage.tsdb.path", tmp_path / "tsdb", "--web.listen-address", "127.0.0.1:%d" % web],
        log_dir=tmp_path)
    prometheus.start()
    try:
        wait_for_listen([("127.0.0.1", web)], timeout=30, alive=prometheus.alive)
        for _ in range(3):
            login(port, backend)
        query = urllib.parse.urlencode(
            {"query": 'sum(mailgate_sessions_total{protocol="imap",outcome="proxied"})'})

        def scraped() -> bool:
            code, body = get("http://127.0.0.1:%d/api/v1/query?%s" % (web, query))
            result = json.loads(body)["data"]["result"] if code == 200 else []
            return bool(result) and float(result[0]["value"][1]) == 3

        wait_for(scraped, "Prometheus to have scraped three sessions", timeout=40)
        code, body = get("http://127.0.0.1:%d/api/v1/targets" % web)
        assert code == 200
        target = json.loads(body)["data"]["activeTargets"][0]
        assert target["health"] == "up", target
    finally:
        prometheus.stop()


def test_healthz_is_503_while_draining(mailgate_instance, backend):
    mg = mailgate_instance
    port, status = start_node(mg, backend)
    url = "http://127.0.0.1:%d/healthz" % status
    assert get(url) == (200, "ok\n")
    held = imap_session(port)  # keeps its worker, and so the master, running
    master = mg.master
    mg.signal(signal.SIGQUIT)
    wait_for(lambda: get(url) == (503, "draining\n"), "healthz 503")
    assert get("http://127.0.0.1:%d/status.json" % status)[0] == 200
    held.sendall(b"a LOGOUT\r\n")
    held.close()
    mg.wait_exit(master)


def test_a_client_resetting_its_connection_is_not_an_error(mailgate_instance, backend):
    # regression: HAProxy's health check resets the connection once it has read the
    # status line; the status server printed a traceback to the master's stderr each time
    import socket
    import struct

    mg = mailgate_instance
    _, status = start_node(mg, backend)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", status)) as client:
            client.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert get("http://127.0.0.1:%d/healthz" % status) == (200, "ok\n")
    time.sleep(0.5)
    assert "Traceback" not in mg.log()


def test_status_allow(mailgate_instance, backend):
    mg = mailgate_instance
    _, status = start_node(mg, backend, extra="status_allow 10.0.0.0/8;")
    for path in ("/", "/status.json", "/metrics", "/healthz"):
        assert get("http://127.0.0.1:%d%s" % (status, path))[0] == 403


def test_status_listen_in_use_is_an_emerg(mailgate_instance, backend):
    mg = mailgate_instance
    taken = mg.port()
    mg.write_imap(extra="status_listen 127.0.0.1:%d;" % taken)
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", taken))
        blocker.listen()
        proc = mg.run()
    assert proc.returncode == 1
    assert "[emerg]" in mg.log() + proc.stderr
    assert "bind() to 127.0.0.1:%d failed (98: Address already in use)" % taken in mg.log()
    assert not children(proc.pid)


def test_embedded_stats(embedded, dovecot):
    gate = embedded.start(STANDARD)
    with open_imap(*gate.address("imap")) as imap:
        imap_login(imap, ALICE)
    wait_for(lambda: embedded.call(_stats(embedded))["sessions"]["imap"]["proxied"] == 1,
             "the session's end counted")
    stats = embedded.call(_stats(embedded))
    assert stats["auth"]["imap"]["ok"] == 1 and stats["sessions_active"]["imap"] == 0
    assert next(iter(stats["backends"].values()))["sessions"] == 1


async def _stats(embedded):
    return embedded.proxy.stats()


def test_reload_moves_the_status_server(mailgate_instance, backend):
    mg = mailgate_instance
    port, status = start_node(mg, backend)
    login(port, backend)
    moved = mg.port()
    mg.conf.write_text(mg.conf.read_text().replace("127.0.0.1:%d;" % status,
                                                   "127.0.0.1:%d;" % moved))
    mg.signal(signal.SIGHUP)
    wait_for_listen([("127.0.0.1", moved)], timeout=WAIT)
    wait_for(lambda: len(status_json(moved)["workers"]) == 2, "the new workers only")
    # the counts of the old workers stay in the sums
    assert status_json(moved)["stats"]["sessions"]["imap"]["proxied"] == 1
    with pytest.raises(OSError):
        urllib.request.urlopen("http://127.0.0.1:%d/healthz" % status, timeout=2)

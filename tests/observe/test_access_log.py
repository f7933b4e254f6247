"""``log_format`` and ``access_log``: one line per session, field by field, for IMAP, POP3
and SMTP, plain and TLS, logged in and refused; nginx's escaping (default and JSON) of
hostile logins; the embedder's ``on_session`` callable; buffer/flush; USR1 reopens it; and
``mailgate -t`` refuses unknown variables and formats as nginx does."""

from __future__ import annotations

import json
import poplib
import re
import signal
import socket
import time

import pytest
from mailgate.config.modules.mail_log import VARIABLES

from tests.process.conftest import wait_for
from tests.support.clients import imap_login, open_imap, open_pop3, open_smtp
from tests.support.configs import STANDARD
from tests.support.users import ALICE, BOB

# every variable, in JSON; $$ is the test template's $ (tests/support/proxy.py substitute)
ALL_JSON = "{%s}" % ",".join('"%s":"$$%s"' % (name, name) for name in VARIABLES)


def _records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _imap_literal_login(address, login: bytes, password: bytes) -> bytes:
    """LOGIN with both as literals (any byte but NUL and CR LF pairs may be in a login)."""
    with socket.create_connection(address, timeout=5) as sock:
        f = sock.makefile("rb")
        f.readline()
        sock.sendall(b"a LOGIN {%d}\r\n" % len(login))
        f.readline()
        sock.sendall(login + b" {%d}\r\n" % len(password))
        f.readline()
        sock.sendall(password + b"\r\n")
        return f.readline()


def test_access_log_fields_json(embedded, dovecot, smtp_backend, tls_client_context):
    path = embedded.directory / "access.json"
    records = []
    gate = embedded.start(
        "log_format all escape=json '%s';\naccess_log %s all;\n%s" % (ALL_JSON, path, STANDARD),
        on_session=records.append)
    with open_imap(*gate.address("imap")) as imap:  # IMAP, plain, logged in
        imap_login(imap, ALICE)
        imap.select("INBOX", readonly=True)
    with open_imap(*gate.address("imaps"), security="ssl", context=tls_client_context) as imap:
        imap_login(imap, BOB)
    pop = open_pop3(*gate.address("pop3s"), security="ssl", context=tls_client_context)
    pop.user(ALICE.login)
    with pytest.raises(poplib.error_proto):
        pop.pass_("wrong")  # POP3 over TLS, refused
    pop.close()
    smtp = open_smtp(*gate.address("smtp"), security="starttls", context=tls_client_context)
    smtp.login(ALICE.login, ALICE.password)
    smtp.quit()
    hostile = b'ev"il\\\x01\n\xc3\xa9\x7f'
    assert _imap_literal_login(gate.address("imap"), hostile, b"pw").startswith(b"a NO")
    wait_for(lambda: len(path.read_text().splitlines()) == 5, "five access log lines")
    imap_port = gate.port("imap")
    embedded.stop()

    lines = _records(path)
    assert len(lines) == len(records) == 5
    by_login = {(r["protocol"], r["login"], r["ssl_protocol"]): r for r in lines}

    imap_plain = by_login["imap", "alice", ""]
    # after LOGOUT, whichever side closes first ends the relay
    assert imap_plain["auth_status"] == "ok"
    assert imap_plain["close_reason"] in ("client_closed", "backend_closed")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", imap_plain["upstream_addr"])
    assert imap_plain["remote_addr"] == "127.0.0.1" and int(imap_plain["remote_port"]) > 0
    assert imap_plain["server_addr"] == "127.0.0.1"
    assert int(imap_plain["server_port"]) == imap_port
    assert imap_plain["server_name"] == "mx.test"
    assert imap_plain["ssl_session_reused"] == "" and imap_plain["proxy_protocol_addr"] == ""
    assert int(imap_plain["bytes_sent"]) > 100 and int(imap_plain["bytes_received"]) > 20
    assert 0 <= float(imap_plain["upstream_connect_time"]) < 5
    assert 0 < float(imap_plain["session_time"]) < 30
    assert int(imap_plain["pid"]) > 0 and int(imap_plain["connection"]) >= 1
    assert re.fullmatch(r"\d+/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}",
                        imap_plain["time_local"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d",
                        imap_plain["time_iso8601"])
    assert abs(float(imap_plain["msec"]) - time.time()) < 60

    imaps = by_login["imap", "bob", "TLSv1.3"]
    assert imaps["auth_status"] == "ok" and imaps["ssl_cipher"].startswith("TLS_")
    assert imaps["ssl_session_reused"] == "." and imaps["ssl_client_s_dn"] == ""

    pop3s = by_login["pop3", "alice", "TLSv1.3"]
    assert pop3s["auth_status"] == "failed" and pop3s["close_reason"] == "auth_failed"
    assert pop3s["upstream_addr"] == "" and pop3s["upstream_connect_time"] == ""

    smtp_tls = by_login["smtp", "alice", "TLSv1.3"]  # STARTTLS: TLS facts too
    assert smtp_tls["auth_status"] == "ok" and smtp_tls["upstream_addr"]

    evil = next(r for r in lines if r["login"].startswith("ev"))
    # JSON escaping as ngx_escape_json(): the line is valid JSON holding the exact bytes
    assert evil["login"].encode("utf-8") == hostile
    assert evil["auth_status"] == "failed"
    raw = path.read_bytes()
    assert b'"login":"ev\\"il\\\\\\u0001\\n\xc3\xa9\x7f"' in raw

    # the embedder's records are the same sessions
    assert sorted(r.connection for r in records) == sorted(int(r["connection"]) for r in lines)
    assert {r.outcome for r in records} == {"proxied", "auth_failed"}


def test_default_format_and_escaping(embedded, dovecot):
    path = embedded.directory / "access.log"
    gate = embedded.start("access_log %s;\n%s" % (path, STANDARD))
    with open_imap(*gate.address("imap")) as imap:
        imap_login(imap, ALICE)
    hostile = b'ev"il\\\x01\n\xc3\xa9'
    _imap_literal_login(gate.address("imap"), hostile, b"pw")
    wait_for(lambda: len(path.read_text().splitlines()) == 2, "two access log lines")
    embedded.stop()
    first, second = path.read_bytes().splitlines()
    assert re.fullmatch(rb'127\.0\.0\.1 \[[^]]+\] imap "alice" ok 127\.0\.0\.1:\d+ \d+ \d+ '
                        rb'\d+\.\d{3} - (client|backend)_closed', first), first
    # ngx_stream_log_escape(): ", \, control bytes and bytes from 0x7F on as \xXX
    assert b'"ev\\x22il\\x5C\\x01\\x0A\\xC3\\xA9" failed - ' in second, second


def test_off_replaces_inherited_and_buffer(embedded, dovecot):
    path = embedded.directory / "buffered.log"
    gate = embedded.start(
        "access_log %s main buffer=64k flush=1h;\n" % path
        + STANDARD.replace("protocol pop3; starttls on;", "protocol pop3; starttls on; access_log off;"))
    with open_imap(*gate.address("imap")) as imap:
        imap_login(imap, ALICE)
    pop = open_pop3(*gate.address("pop3"))
    pop.user(ALICE.login)
    pop.pass_(ALICE.password)
    pop.quit()
    time.sleep(0.3)  # the session's end is written into the buffer, not the file
    assert not path.exists() or path.read_text() == ""
    embedded.stop()  # the proxy's end writes what the buffer holds
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and " imap " in lines[0]  # pop3's access_log off


@pytest.mark.parametrize(("directive", "message"), [
    ("log_format x '$nope';", 'unknown "nope" variable'),
    ("log_format x '${login';", 'the closing bracket in "login" variable is missing'),
    ("access_log logs/a.log nofmt;", 'unknown log format "nofmt"'),
    ("log_format x escape=xml '$login';", 'unknown log format escaping "xml"'),
    ("access_log logs/a.log main flush=1s;", 'no buffer is defined for access_log "logs/a.log"'),
])
def test_dash_t_refuses(mailgate_instance, directive, message):
    mg = mailgate_instance
    mg.write_imap(extra=directive)
    proc = mg.run("-t")
    assert proc.returncode == 1
    line = [line for line in proc.stderr.splitlines() if "[emerg]" in line]
    assert len(line) == 1, proc.stderr
    number = mg.conf.read_text().splitlines().index(
        next(text for text in mg.conf.read_text().splitlines() if directive in text)) + 1
    assert line[0].endswith("%s in %s:%d" % (message, mg.conf, number)), line[0]


def test_reopen_on_usr1(mailgate_instance, backend):
    mg = mailgate_instance
    access = mg.root / "logs" / "access.log"
    port = mg.write_imap(auth_http="127.0.0.1:%d/auth" % backend.auth.port,
                         extra="access_log %s;" % access)
    mg.start()
    with open_imap("127.0.0.1", port) as imap:
        imap.login(backend.USER, backend.PASSWORD)
    wait_for(lambda: access.exists() and len(access.read_text().splitlines()) == 1, "a line")
    access.rename(access.with_suffix(".1"))
    mg.signal(signal.SIGUSR1)
    mg.wait_log(r"\[notice\] \d+#\d+: reopening logs", count=3)  # master and two workers
    for _ in range(2):  # whichever worker takes them
        with open_imap("127.0.0.1", port) as imap:
            imap.login(backend.USER, backend.PASSWORD)
    wait_for(lambda: access.exists() and len(access.read_text().splitlines()) == 2,
             "two lines in the new file")
    assert len(access.with_suffix(".1").read_text().splitlines()) == 1


def test_access_log_to_syslog(embedded, dovecot, port_allocator):
    port = port_allocator.port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", port))
        receiver.settimeout(5)
        gate = embedded.start("access_log syslog:server=127.0.0.1:%d,facility=mail,tag=mg;\n%s"
                              % (port, STANDARD))
        with open_imap(*gate.address("imap")) as imap:
            imap_login(imap, ALICE)
        datagram = receiver.recv(4096)
    embedded.stop()
    # RFC 3164 as nginx's ngx_syslog_add_header(): <facility * 8 + info>, then the line
    assert re.fullmatch(rb'<22>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ mg: 127\.0\.0\.1 \[[^]]+\] '
                        rb'imap "alice" ok \S+ \d+ \d+ \S+ - (client|backend)_closed', datagram), datagram


def test_proxy_protocol_addr(embedded, dovecot):
    path = embedded.directory / "access.log"
    gate = embedded.start(
        "server_name mx.test; auth_http $auth_http;\n"
        "log_format pp '$$remote_addr $$proxy_protocol_addr $$server_port';\n"
        "access_log %s pp;\n"
        "server { listen 127.0.0.1:${port_imap} proxy_protocol; protocol imap; }\n"
        "server { listen 127.0.0.1:${port_real} proxy_protocol; protocol imap;\n"
        "         set_real_ip_from 127.0.0.1; }\n" % path)
    for name in ("imap", "real"):
        with socket.create_connection(gate.address(name), timeout=5) as sock:
            sock.sendall(b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 143\r\n")
            assert sock.makefile("rb").readline().startswith(b"* OK")
    wait_for(lambda: len(path.read_text().splitlines()) == 2, "two lines")
    plain, real = gate.port("imap"), gate.port("real")
    embedded.stop()
    lines = path.read_text().splitlines()
    # realip replaces $remote_addr only where the sender is trusted; the header's address
    # is $proxy_protocol_addr either way
    assert set(lines) == {"127.0.0.1 192.0.2.1 %d" % plain, "192.0.2.1 192.0.2.1 %d" % real}


def test_buffered_lines_written_at_a_fast_stop(mailgate_instance, backend):
    mg = mailgate_instance
    access = mg.root / "logs" / "access.log"
    port = mg.write_imap(auth_http="127.0.0.1:%d/auth" % backend.auth.port,
                         extra="access_log %s main buffer=64k;" % access)
    master = mg.start()
    with open_imap("127.0.0.1", port) as imap:
        imap.login(backend.USER, backend.PASSWORD)
    mg.wait_log(r"proxied session done")
    assert access.read_text() == ""  # held in the worker's buffer
    mg.signal(signal.SIGTERM)
    mg.wait_exit(master)
    assert len(access.read_text().splitlines()) == 1

"""The proxy runner itself: templating, -t, daemon mode, failures, clean stop."""

from __future__ import annotations

import signal

import pytest

from tests.support.procs import StartupError, group_alive, pid_alive
from tests.support.proxy import IMPLEMENTATIONS, Mailgate
from tests.support.transcript import ReadLine, run_script

pytestmark = pytest.mark.nginx

IMAP_ONLY = """
    auth_http $auth_http;
    server { listen 127.0.0.1:${port_imap}; protocol imap; }
"""


def test_render_allocates_ports_and_fills_values(nginx):
    text = nginx.render(IMAP_ONLY + "    # costs $$5\n")
    assert f"listen 127.0.0.1:{nginx.port('imap')};" in text
    assert f"auth_http {nginx.values['auth_http']};" in text
    assert "costs $5" in text and "worker_processes 1;" in text and " info;" in text
    with pytest.raises(KeyError, match=r"\$nope"):
        nginx.render("auth_http $nope;")


def test_check_config_reports_nginx_errors(nginx):
    assert nginx.check_config(IMAP_ONLY).ok
    bad = nginx.check_config(IMAP_ONLY + "    imap_auth bogus;\n")
    assert not bad.ok
    assert f'invalid value "bogus" in {nginx.conf_path}:' in bad.output


def test_start_failure_carries_the_diagnostics(nginx):
    nginx.tolerate_problems = True  # the [emerg] is the point
    with pytest.raises(
        StartupError, match=r'(?s)did not start.*unknown directive "no_such_directive"'
    ):
        nginx.start(IMAP_ONLY + "    no_such_directive on;\n")
    assert not nginx.running


def test_foreground_stop_leaves_nothing_and_returns_the_log(nginx):
    nginx.start(IMAP_ONLY)
    pgid = nginx.master_pid
    log = nginx.stop()
    assert "start worker process" in log and "exit" in log
    assert not group_alive(pgid)
    assert nginx.problems() == []


def test_daemon_mode_and_signals(nginx):
    nginx.start(IMAP_ONLY, daemon=True)
    pid = nginx.master_pid
    assert nginx.running and pid == int(nginx.pid_path.read_text())
    # A greeting proves the worker is up: a QUIT sent while nginx's worker is still
    # starting can be lost, and the master then waits for it forever.
    assert run_script(nginx.address("imap"), [ReadLine()]).received == b"* OK IMAP4 ready\r\n"
    nginx.send_signal(signal.SIGUSR1)  # reopen logs: harmless, proves the pid is the master
    nginx.stop(sig=signal.SIGQUIT)
    assert not pid_alive(pid) and not group_alive(pid)


def test_log_lines_by_level(nginx):
    nginx.start(IMAP_ONLY)
    nginx.stop()
    assert nginx.log_lines("notice") and all(
        "[notice]" in line for line in nginx.log_lines("notice")
    )


def test_mailgate_command_line(tmp_path):
    argv = Mailgate().command(tmp_path, tmp_path / "m.conf", "daemon off;")
    assert argv[1:3] == ["-m", "mailgate"] and argv[argv.index("-c") + 1] == str(tmp_path / "m.conf")



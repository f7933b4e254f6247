"""Several ``error_log``s at main, mail{} and server{} level, with the master running.

nginx's rules (ngx_log_set_log(), ngx_mail_core_merge_server_conf()): every
``error_log`` of one level receives the lines its level admits; a level with an
``error_log`` of its own replaces the ones it would inherit; any ``error_log stderr``
anywhere keeps the master from sending its stderr to the main log file
(``cycle->log_use_stderr``, ngx_log_redirect_stderr()).
"""

from __future__ import annotations

import re

import pytest

from tests.process.conftest import greeting, wait_for
from tests.support.components import NGINX, NGINX_MAIL_MODULE
from tests.support.procs import ServerProcess, wait_for_listen

CONNECTED = re.compile(r"\[info\] \d+#\d+: \*\d+ client 127\.0\.0\.1:\d+ connected to ")

# (main, mail, server): the error_log lines of each level, {d} the logs directory;
# then which destinations get the session's "connected" line, which do not
CASES = {
    "issue-16: server file and stderr": (
        ["{d}/glob.log info"], [], ["{d}/e_info.log info", "stderr info"],
        ["e_info.log", "stderr"], ["glob.log"]),
    "two at main, inherited": (
        ["{d}/a.log info", "{d}/b.log info"], [], [],
        ["a.log", "b.log"], ["stderr"]),
    "main file and stderr, inherited": (
        ["{d}/a.log info", "stderr info"], [], [],
        ["a.log", "stderr"], []),
    "mail replaces main": (
        ["{d}/glob.log info"], ["{d}/m1.log info", "{d}/m2.log info"], [],
        ["m1.log", "m2.log"], ["glob.log", "stderr"]),
    "server replaces mail": (
        ["{d}/glob.log info"], ["{d}/m.log info", "stderr info"], ["{d}/s.log info"],
        ["s.log"], ["m.log", "glob.log", "stderr"]),
    "mail stderr inherited by the server": (
        ["{d}/glob.log info"], ["stderr info"], [],
        ["stderr"], ["glob.log"]),
    "levels of one chain": (
        ["{d}/glob.log info"], [], ["{d}/notice.log notice", "{d}/debug.log debug"],
        ["debug.log"], ["notice.log", "glob.log"]),
}


def _conf(root, port: int, case: str, head: str) -> str:
    main, mail, server = CASES[case][:3]
    logs = root / "logs"

    def directives(items):
        return "".join("error_log %s;\n" % item.format(d=logs) for item in items)

    return ("%suser root;\ndaemon off;\nworker_processes 2;\n%sevents {}\n"
            "mail {\n%sauth_http 127.0.0.1:9/auth;\n"
            "server { listen 127.0.0.1:%d; protocol imap;\n%s}\n}\n"
            % (head, directives(main), directives(mail), port, directives(server)))


def _check(root, port: int, case: str, stderr_path) -> None:
    receive, silent = CASES[case][3:]

    def text(name):
        path = stderr_path if name == "stderr" else root / "logs" / name
        return path.read_text() if path.exists() else ""

    assert greeting(port).startswith(b"* OK")
    for name in receive:
        wait_for(lambda name=name: CONNECTED.search(text(name)), "the connected line in %s" % name)
    for name in silent:
        assert not CONNECTED.search(text(name)), (name, text(name))


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_error_log_combinations(mailgate_instance, case):
    mg = mailgate_instance
    port = mg.port()
    mg.conf.write_text(_conf(mg.root, port, case, ""))
    mg.start()
    _check(mg.root, port, case, mg.root / "stderr")


@pytest.mark.nginx
@pytest.mark.requires("nginx")
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_nginx_combines_them_alike(tmp_path, port_allocator, case):
    """The reference: Debian's nginx on the same configuration puts the line in the same
    places (the expectations above are nginx's)."""
    (tmp_path / "logs").mkdir()
    port = port_allocator.port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(_conf(tmp_path, port, case, "load_module %s;\npid %s/nginx.pid;\n"
                          % (NGINX_MAIL_MODULE, tmp_path)))
    nginx = ServerProcess([NGINX, "-p", "%s/" % tmp_path, "-c", conf], log_dir=tmp_path)
    nginx.start()
    try:
        wait_for_listen([("127.0.0.1", port)], alive=nginx.alive)
        _check(tmp_path, port, case, nginx.stderr_path)
    finally:
        nginx.stop()
        port_allocator.release(port)

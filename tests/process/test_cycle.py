"""The master's pieces in this process: cycles across a reload, pid file, signal lines."""

from __future__ import annotations

import signal
import socket

import pytest
from mailgate import Config
from mailgate.config import ConfigError
from mailgate.log import ErrorLog
from mailgate.process import system
from mailgate.process.cycle import Cycle, check_worker_connections
from mailgate.process.pidfile import create_pidfile, delete_pidfile
from mailgate.process.signals import received
from mailgate.tls import SessionZones


def config(tmp_path, *listens: str, extra: str = "", events: str = "") -> Config:
    servers = "\n".join("server { listen %s; protocol imap; }" % listen for listen in listens)
    return Config.from_string(
        "error_log %s/error.log info;\nevents { %s }\nmail { auth_http 127.0.0.1:1/a; %s\n%s }"
        % (tmp_path, events, extra, servers), prefix=str(tmp_path))


@pytest.fixture
def zones():
    registry = SessionZones()
    yield registry
    registry.close()


def test_reload_keeps_unchanged_sockets(tmp_path, port_allocator, zones):
    kept, removed, added = port_allocator.allocate(3)
    first = Cycle.open(config(tmp_path, "127.0.0.1:%d" % kept, "127.0.0.1:%d" % removed), zones)
    kept_socket, removed_socket = first.sockets
    second = Cycle.open(config(tmp_path, "127.0.0.1:%d" % kept, "127.0.0.1:%d" % added), zones,
                        previous=first)
    assert second.sockets[0] is kept_socket
    assert second.sockets[1].getsockname() == ("127.0.0.1", added)
    first.release(successor=second)
    assert removed_socket.fileno() == -1 and kept_socket.fileno() >= 0
    with socket.socket() as probe:  # the removed address is free again
        probe.bind(("127.0.0.1", removed))
    second.release()
    assert kept_socket.fileno() == -1


def test_failed_reload_leaves_the_previous_cycle(tmp_path, port_allocator, zones, pki):
    kept, taken = port_allocator.allocate(2)
    tls = ("starttls on; ssl_certificate %s; ssl_certificate_key %s; "
           "ssl_session_cache shared:Z:1m;" % (pki.server_rsa.cert, pki.server_rsa.key_file))
    first = Cycle.open(config(tmp_path, "127.0.0.1:%d" % kept), zones)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", taken))
        busy.listen(1)
        # as nginx: five tries 500 ms apart, each failure logged, then "still could not bind()"
        with pytest.raises(ConfigError, match=r"still could not bind\(\)"):
            Cycle.open(config(tmp_path, "127.0.0.1:%d" % kept, "127.0.0.1:%d" % taken,
                              extra=tls), zones, previous=first)
    assert first.sockets[0].fileno() >= 0
    assert len(zones) == 0  # the failed configuration's zone was not made
    first.release()


def test_unix_sockets_are_removed_with_their_cycle(tmp_path, zones):
    path = tmp_path / "imap.sock"
    first = Cycle.open(config(tmp_path, "unix:%s" % path), zones)
    assert path.exists()
    second = Cycle.open(config(tmp_path, "unix:%s" % path), zones, previous=first)
    first.release(successor=second)
    assert path.exists()
    third = Cycle.open(config(tmp_path, "unix:%s.2" % path), zones, previous=second)
    second.release(successor=third)
    assert not path.exists()
    assert "[warn]" in (tmp_path / "error.log").read_text()
    third.release()
    assert not (tmp_path / "imap.sock.2").exists()


def test_unopenable_error_log(tmp_path, zones):
    bad = Config.from_string("error_log %s/missing/e.log;\nmail { auth_http 127.0.0.1:1/a; }"
                             % tmp_path, prefix=str(tmp_path))
    with pytest.raises(ConfigError) as info:
        Cycle.open(bad, zones)
    assert str(info.value) == ('open() "%s/missing/e.log" failed (2: No such file or directory)'
                               % tmp_path)


def test_worker_connections_check(tmp_path):
    check_worker_connections(config(tmp_path, "127.0.0.1:1", events="worker_connections 2;"))
    with pytest.raises(ConfigError) as info:
        check_worker_connections(config(tmp_path, "127.0.0.1:1", "127.0.0.1:2",
                                        events="worker_connections 2;"))
    assert str(info.value) == "2 worker_connections are not enough for 2 listening sockets"


def test_stderr_goes_to_the_first_file_log(tmp_path, zones):
    cycle = Cycle.open(config(tmp_path), zones)
    assert cycle.first_log_file() == cycle.log_files.get(str(tmp_path / "error.log")).fd
    assert not cycle.logs_to_stderr()
    cycle.release()
    both = Config.from_string("error_log %s/e.log; error_log stderr;\n"
                              "mail { auth_http 1.1.1.1:1/a; }" % tmp_path, prefix=str(tmp_path))
    cycle = Cycle.open(both, zones)
    assert cycle.logs_to_stderr() and cycle.first_log_file() is None
    cycle.release()
    # an error_log stderr of a server keeps stderr too (nginx's cycle->log_use_stderr)
    server = Config.from_string(
        "error_log %s/e.log;\nmail { auth_http 1.1.1.1:1/a; server { listen 127.0.0.1:1; "
        "protocol imap; error_log stderr; } }" % tmp_path, prefix=str(tmp_path))
    cycle = Cycle.open(server, zones)
    assert not cycle.logs_to_stderr() and cycle.uses_stderr() and cycle.first_log_file() is None
    cycle.release()


def test_pid_file(tmp_path):
    path = tmp_path / "m.pid"
    path.write_text("old contents, longer\n")
    create_pidfile(str(path), 4321)
    assert path.read_text() == "4321\n"
    lines = []

    class Log:
        def log(self, level, message):
            lines.append((level, message))

    delete_pidfile(str(path), Log())
    assert not path.exists() and lines == []
    delete_pidfile(str(path), Log())
    assert lines == [("alert", 'unlink() "%s" failed (2: No such file or directory)' % path)]
    with pytest.raises(ConfigError, match=r'open\(\) ".*/no/m.pid" failed \(2: '):
        create_pidfile(str(tmp_path / "no" / "m.pid"), 1)


class _Info:
    def __init__(self, signo: int, pid: int):
        self.si_signo, self.si_pid = signo, pid


def test_signal_lines():
    assert received(_Info(signal.SIGHUP, 1234), ", reconfiguring") == (
        "signal 1 (SIGHUP) received from 1234, reconfiguring")
    assert received(_Info(signal.SIGINT, 0), ", exiting") == "signal 2 (SIGINT) received, exiting"
    assert received(_Info(signal.SIGCHLD, 99), "") == "signal 17 (SIGCHLD) received from 99"


def test_os_status_and_event_method():
    status = system.os_status()
    assert status[0].startswith("OS: Linux ")
    assert status[1].startswith("getrlimit(RLIMIT_NOFILE): ")
    assert system.event_method() == "epoll"


def test_error_log_object_is_the_main_one(tmp_path, zones):
    cycle = Cycle.open(config(tmp_path), zones)
    assert isinstance(cycle.log, ErrorLog)
    cycle.log.log("notice", "hello")
    assert "[notice]" in (tmp_path / "error.log").read_text()
    cycle.release()

"""Every signal on a real multi-worker instance."""

from __future__ import annotations

import imaplib
import os
import re
import signal
import socket
import time

import pytest

from tests.process.conftest import (
    GREETING,
    WAIT,
    Backend,
    connect,
    greeting,
    imap_session,
    recv_line,
    wait_for,
)
from tests.support.procs import pid_alive


def command(sock: socket.socket, line: bytes) -> list[bytes]:
    """Send a tagged IMAP command; the lines up to its tagged answer."""
    sock.sendall(line + b"\r\n")
    tag = line.split()[0] + b" "
    lines = []
    while True:
        got = recv_line(sock)
        assert got, "connection closed after %r" % lines
        lines.append(got)
        if got.startswith(tag):
            return lines


def capability(port: int) -> bytes:
    with connect(port) as sock:
        assert recv_line(sock) == GREETING
        return command(sock, b"c CAPABILITY")[0]


def test_reload(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap(capabilities="IMAP4rev1 XOLD")
    master = mg.start()
    old = mg.workers()
    waiting = imap_session(port)  # a pre-auth session of the old configuration

    mg.write_imap(port, capabilities="IMAP4rev1 XNEW")
    mg.signal(signal.SIGHUP)
    mg.wait_log(r"signal 1 \(SIGHUP\) received from %d, reconfiguring$" % os.getpid())
    mg.wait_log(r"\[notice\] (%s)#\d+: gracefully shutting down$" % "|".join(map(str, old)),
                count=2)
    assert capability(port) == b"* CAPABILITY IMAP4rev1 XNEW AUTH=PLAIN\r\n"
    # the old worker with a session goes on serving it with the old configuration
    assert command(waiting, b"a CAPABILITY")[0] == b"* CAPABILITY IMAP4rev1 XOLD AUTH=PLAIN\r\n"
    assert command(waiting, b"b LOGOUT")[-1] == b"b OK completed\r\n"
    waiting.close()
    wait_for(lambda: not any(pid_alive(pid) for pid in old), what="old workers to exit")
    assert len(mg.workers()) == 2
    log = mg.wait_log(r"worker process (%s) exited with code 0$" % "|".join(map(str, old)), count=2)
    for pid in old:
        assert "[notice] %d#%d: worker process %d exited with code 0" % (master, master, pid) in log
        assert "[notice] %d#%d: exit\n" % (pid, pid) in log
    assert "[notice] %d#%d: reconfiguring" % (master, master) in log
    assert master == mg.read_pid()


def test_reload_with_an_error_keeps_the_old_configuration(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap(capabilities="IMAP4rev1 XOLD")
    master = mg.start()
    workers = mg.workers()
    mg.conf.write_text(mg.conf.read_text() + "\nbroken;\n")
    mg.signal(signal.SIGHUP)
    log = mg.wait_log(r"\[emerg\] %d#%d: unknown directive \"broken\" in " % (master, master))
    assert "[notice] %d#%d: reconfiguring" % (master, master) in log
    time.sleep(0.3)
    assert mg.workers() == workers
    assert capability(port) == b"* CAPABILITY IMAP4rev1 XOLD AUTH=PLAIN\r\n"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_reload_with_an_endless_include_keeps_the_old_configuration(mailgate_instance, device):
    # issue 11, defect 2: the master read the device until memory ran out, then logged
    # a MemoryError traceback
    mg = mailgate_instance
    port = mg.write_imap(capabilities="IMAP4rev1 XOLD")
    master = mg.start()
    workers = mg.workers()
    mg.conf.write_text(mg.conf.read_text() + "\ninclude %s;\n" % device)
    mg.signal(signal.SIGHUP)
    log = mg.wait_log(r'\[emerg\] %d#%d: "%s" is not a regular file in ' % (master, master, device))
    assert "Traceback" not in log and "[alert]" not in log
    time.sleep(0.3)
    assert mg.workers() == workers
    assert capability(port) == b"* CAPABILITY IMAP4rev1 XOLD AUTH=PLAIN\r\n"


def test_reload_with_a_bad_certificate_keeps_the_old_configuration(mailgate_instance, pki):
    mg = mailgate_instance
    tls = "starttls on; ssl_certificate %s; ssl_certificate_key %s;"
    port = mg.write_imap(capabilities="IMAP4rev1 XOLD",
                         extra=tls % (pki.server_rsa.cert, pki.server_rsa.key_file))
    master = mg.start()
    workers = mg.workers()
    missing = mg.root / "missing.crt"
    mg.write_imap(port, capabilities="IMAP4rev1 XNEW",
                  extra=tls % (missing, pki.server_rsa.key_file))
    mg.signal(signal.SIGHUP)
    mg.wait_log(r'\[emerg\] %d#%d: cannot load certificate "%s"' % (master, master, missing))
    time.sleep(0.3)
    assert mg.workers() == workers
    assert capability(port) == b"* CAPABILITY IMAP4rev1 XOLD AUTH=PLAIN STARTTLS\r\n"


def test_reload_moves_listening_sockets(mailgate_instance):
    mg = mailgate_instance
    kept, removed, added = mg.port(), mg.port(), mg.port()
    mg.write("auth_http 127.0.0.1:1/auth;\n"
             "server { listen 127.0.0.1:%d; listen 127.0.0.1:%d; protocol imap; }"
             % (kept, removed))
    mg.start()
    old = mg.workers()
    mg.write("auth_http 127.0.0.1:1/auth;\n"
             "server { listen 127.0.0.1:%d; protocol imap; }\n"
             "server { listen 127.0.0.1:%d; protocol pop3; }" % (kept, added))
    mg.signal(signal.SIGHUP)
    wait_for(lambda: not any(pid_alive(pid) for pid in old), what="old workers to exit")
    assert greeting(kept) == GREETING
    assert greeting(added) == b"+OK POP3 ready\r\n"
    with pytest.raises(ConnectionRefusedError):
        greeting(removed)


def test_quit_drains_sessions(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap()
    master = mg.start()
    workers = mg.workers()
    session = imap_session(port)
    mg.signal(signal.SIGQUIT)
    mg.wait_log(r"gracefully shutting down$", count=2)
    wait_for(lambda: _refused(port), what="the port to close")
    # the session goes on until the client ends it
    time.sleep(0.2)
    assert pid_alive(master)
    assert command(session, b"a NOOP") == [b"a OK completed\r\n"]
    assert command(session, b"b LOGOUT")[-1] == b"b OK completed\r\n"
    session.close()
    assert mg.launcher.wait(WAIT) == 0
    assert not any(pid_alive(pid) for pid in workers)
    assert not mg.pid_path.exists()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_quit_with_shutdown_timeout(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap(main="worker_shutdown_timeout 300ms;")
    mg.start()
    session = imap_session(port)
    started = time.monotonic()
    mg.signal(signal.SIGQUIT)
    assert recv_line(session, timeout=WAIT) == b""  # closed by the timeout
    assert mg.launcher.wait(WAIT) == 0
    assert 0.25 < time.monotonic() - started < 5


def test_terminate_closes_sessions_at_once(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap()
    master = mg.start()
    session = imap_session(port)
    mg.signal(signal.SIGTERM)
    assert recv_line(session, timeout=WAIT) == b""
    assert mg.launcher.wait(WAIT) == 0
    log = mg.log()
    assert "signal 15 (SIGTERM) received from %d, exiting" % os.getpid() in log
    assert "[notice] %d#%d: exit\n" % (master, master) in log
    assert not mg.pid_path.exists()


def test_interrupt_is_a_fast_stop(mailgate_instance):
    mg = mailgate_instance
    mg.write_imap()
    mg.start()
    mg.signal(signal.SIGINT)
    assert mg.launcher.wait(WAIT) == 0
    assert "signal 2 (SIGINT) received from %d, exiting" % os.getpid() in mg.log()


def test_reopen_after_rotation(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap()
    master = mg.start()
    workers = mg.workers()
    rotated = mg.error_log.with_name("error.log.1")
    mg.error_log.rename(rotated)
    mg.signal(signal.SIGUSR1)
    # each process says it before it reopens (as nginx): in the rotated file
    reopening = re.compile(r"#\d+: reopening logs$", re.MULTILINE)
    wait_for(lambda: len(reopening.findall(rotated.read_text())) == 3,
             what="reopening logs")
    old = rotated.read_text()
    assert "signal 10 (SIGUSR1) received from %d, reopening logs" % os.getpid() in old
    for pid in [master, *workers]:
        assert "[notice] %d#%d: reopening logs" % (pid, pid) in old
    assert greeting(port) == GREETING
    mg.wait_log(r"client 127\.0\.0\.1:\d+ connected to 127\.0\.0\.1:%d" % port)
    assert "connected to" not in rotated.read_text()
    # what a process writes to stderr (a traceback, say) follows the log too
    for pid in [master, *workers]:
        assert os.readlink("/proc/%d/fd/2" % pid) == str(mg.error_log)


def test_killed_worker_is_replaced(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap()
    master = mg.start()
    victim, other = mg.workers()
    os.kill(victim, signal.SIGKILL)
    log = mg.wait_log(r"start worker process \d+$", count=3)
    assert "[alert] %d#%d: worker process %d exited on signal 9\n" % (master, master, victim) in log
    replacement = int(re.findall(r"start worker process (\d+)$", log, re.MULTILINE)[-1])
    wait_for(lambda: sorted(mg.workers()) == sorted([other, replacement]), what="the replacement")
    assert greeting(port) == GREETING


def test_worker_exiting_on_its_own_is_replaced(mailgate_instance):
    mg = mailgate_instance
    mg.write_imap()
    master = mg.start()
    victim = mg.workers()[0]
    os.kill(victim, signal.SIGQUIT)  # not from the master: the worker logs it
    log = mg.wait_log(r"start worker process \d+$", count=3)
    assert "signal 3 (SIGQUIT) received from %d, shutting down" % os.getpid() in log
    assert "[notice] %d#%d: worker process %d exited with code 0" % (master, master, victim) in log
    wait_for(lambda: len(mg.workers()) == 2 and victim not in mg.workers(), what="the replacement")


def test_winch_stops_the_workers_of_a_daemon(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap(daemon=True)
    master = mg.start_daemon()
    workers = mg.workers()
    mg.signal(signal.SIGWINCH)
    wait_for(lambda: not any(pid_alive(pid) for pid in workers), what="the workers to exit")
    assert mg.workers() == []
    line = "signal 28 (SIGWINCH) received from %d, stop accepting connections" % os.getpid()
    assert line in mg.log()
    # the master keeps the sockets: connections wait in the queue, unanswered
    with connect(port) as sock:
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(1)
    assert pid_alive(master) and mg.read_pid() == master
    mg.signal(signal.SIGHUP)  # brings workers back
    wait_for(lambda: len(mg.workers()) == 2, what="new workers")
    assert greeting(port) == GREETING


def test_winch_is_ignored_in_the_foreground(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap()
    master = mg.start()
    workers = mg.workers()
    mg.signal(signal.SIGWINCH)
    mg.wait_log(r"\[notice\] %d#%d: signal 28 \(SIGWINCH\) received from %d$"
                % (master, master, os.getpid()))
    time.sleep(0.2)
    assert mg.workers() == workers
    assert greeting(port) == GREETING


def test_worker_connections_refusal(mailgate_instance):
    mg = mailgate_instance
    # one listening socket and nginx's channel leave one connection for a client
    port = mg.write_imap(workers=1, events="worker_connections 3;")
    mg.start()
    first = imap_session(port)
    with connect(port) as second:
        assert recv_line(second) == b""
    mg.wait_log(r"\[alert\] \d+#\d+: \d+ worker_connections are not enough$")
    first.close()
    wait_for(lambda: _try_greeting(port) == GREETING, what="a free connection")


def _try_greeting(port: int) -> bytes | None:
    try:
        return greeting(port, timeout=2)
    except OSError:
        return None


def test_established_session_survives_reload(mailgate_instance, backend):
    mg = mailgate_instance
    port = mg.write_imap(capabilities="IMAP4rev1 XOLD", auth_http=backend.auth.url, workers=1)
    mg.start()
    (old,) = mg.workers()
    proxied = imaplib.IMAP4("127.0.0.1", port, timeout=WAIT)
    proxied.login(Backend.USER, Backend.PASSWORD)
    proxied.select("INBOX", readonly=True)
    pre_auth = imaplib.IMAP4("127.0.0.1", port, timeout=WAIT)
    assert pre_auth.capabilities == ("IMAP4REV1", "XOLD", "AUTH=PLAIN")

    mg.write_imap(port, capabilities="IMAP4rev1 XNEW", auth_http=backend.auth.url, workers=1)
    mg.signal(signal.SIGHUP)
    mg.wait_log(r"\[notice\] %d#\d+: gracefully shutting down$" % old)
    assert capability(port) == b"* CAPABILITY IMAP4rev1 XNEW AUTH=PLAIN\r\n"
    assert pid_alive(old)
    # both sessions complete on the old worker, after the reload
    typ, data = proxied.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == Backend.MESSAGE
    assert proxied.logout()[0] == "BYE"
    pre_auth.login(Backend.USER, Backend.PASSWORD)
    assert pre_auth.select("INBOX", readonly=True) == ("OK", [b"1"])
    assert pre_auth.logout()[0] == "BYE"
    wait_for(lambda: not pid_alive(old), "the old worker to exit")
    log = mg.log()
    assert "[notice] %d#%d: exit\n" % (old, old) in log
    assert len(re.findall(r"\[info\] %d#%d: \*\d+ client logged in" % (old, old), log)) == 2

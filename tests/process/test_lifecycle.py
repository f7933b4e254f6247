"""Start, stop, the pid file, ``daemon``, start-up errors and ``mailgate -s``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

from tests.process.conftest import WAIT, greeting, wait_for
from tests.support.procs import pid_alive


def test_daemon_off_pid_file_lifecycle(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap()
    master = mg.start()
    assert master == mg.launcher.pid  # no fork into the background
    assert mg.pid_path.read_text() == "%d\n" % master
    assert greeting(port) == b"* OK IMAP4 ready\r\n"
    mg.signal(signal.SIGQUIT)
    assert mg.launcher.wait(WAIT) == 0
    assert not mg.pid_path.exists()
    assert mg.workers() == []
    log = mg.log()
    assert "[notice] %d#%d: start worker processes" % (master, master) in log
    assert log.count("start worker process ") == 2
    assert log.rstrip().endswith("[notice] %d#%d: exit" % (master, master))


def test_daemon_on(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap(daemon=True)
    proc = mg.run()
    # the pid file is there when the command returns
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == proc.stderr == ""
    master = mg.read_pid()
    assert master is not None and master != proc.pid
    mg.groups.add(master)
    assert os.getsid(master) == master  # setsid: a session of its own
    assert os.readlink("/proc/%d/fd/0" % master) == os.devnull
    assert os.readlink("/proc/%d/fd/1" % master) == os.devnull
    assert os.readlink("/proc/%d/fd/2" % master) == str(mg.error_log)  # stderr into the log
    wait_for(lambda: len(mg.workers()) == 2, what="workers")
    assert greeting(port) == b"* OK IMAP4 ready\r\n"
    assert mg.run("-s", "stop").returncode == 0
    mg.wait_exit(master)
    assert not mg.pid_path.exists()


def test_bad_configuration_starts_nothing(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap(extra="bogus_directive on;")
    proc = mg.run()
    assert proc.returncode == 1
    assert '[emerg]' in proc.stderr
    assert 'unknown directive "bogus_directive" in %s:' % mg.conf in proc.stderr
    assert not mg.pid_path.exists()
    with socket.socket() as sock:  # the port was not left bound
        sock.bind(("127.0.0.1", port))


def test_bind_failure(mailgate_instance):
    mg = mailgate_instance
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        mg.write_imap(port)
        proc = mg.run()
    assert proc.returncode == 1
    assert "[emerg]" in proc.stderr
    assert "bind() to 127.0.0.1:%d failed (98: Address already in use)" % port in proc.stderr
    assert not mg.pid_path.exists()


def test_worker_connections_not_enough_for_listening_sockets(mailgate_instance):
    mg = mailgate_instance
    mg.write_imap(events="worker_connections 1;")
    proc = mg.run()
    assert proc.returncode == 1
    assert "1 worker_connections are not enough for 1 listening sockets" in proc.stderr


def test_unwritable_pid_file(mailgate_instance, tmp_path):
    mg = mailgate_instance
    port = mg.write_imap(main="pid %s/missing/dir/m.pid;" % tmp_path)
    proc = mg.run()
    assert proc.returncode == 1
    missing = 'open() "%s/missing/dir/m.pid" failed (2: No such file or directory)' % tmp_path
    assert missing in proc.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_listening_within_one_second(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap()
    started = time.monotonic()
    mg.start()
    wait_for(lambda: _try_greeting(port), "a greeting")
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, "first greeting %.3f s after start" % elapsed


def _try_greeting(port: int) -> bytes | None:
    try:
        return greeting(port, timeout=1.0)
    except OSError:
        return None


def test_signal_without_pid_file(mailgate_instance):
    mg = mailgate_instance
    mg.write_imap()
    proc = mg.run("-s", "reload")
    assert proc.returncode == 1
    assert "[notice]" in proc.stderr and "signal process started" in proc.stderr
    assert ('[error] %d#%d: open() "%s" failed (2: No such file or directory)'
            % (proc.pid, proc.pid, mg.pid_path)) in proc.stderr


def test_signal_with_invalid_pid_file(mailgate_instance):
    mg = mailgate_instance
    mg.write_imap()
    mg.pid_path.write_text("")
    proc = mg.run("-s", "quit")
    assert proc.returncode == 1
    assert 'invalid PID number "" in "%s"' % mg.pid_path in proc.stderr
    mg.pid_path.write_text("12x\n")
    assert 'invalid PID number "12x" in "%s"' % mg.pid_path in mg.run("-s", "stop").stderr


def test_signal_to_a_dead_process(mailgate_instance):
    mg = mailgate_instance
    mg.write_imap()
    dead = subprocess.Popen(["true"])
    dead.wait()
    mg.pid_path.write_text("%d\n" % dead.pid)
    proc = mg.run("-s", "reopen")
    assert proc.returncode == 1
    assert "[alert]" in proc.stderr
    assert "kill(%d, %d) failed (3: No such process)" % (dead.pid, signal.SIGUSR1) in proc.stderr


def test_signal_with_bad_configuration(mailgate_instance):
    mg = mailgate_instance
    mg.write("bogus;")
    proc = mg.run("-s", "reload")
    assert proc.returncode == 1
    assert "[emerg]" in proc.stderr and "signal process started" not in proc.stderr


def test_signal_commands(mailgate_instance):
    mg = mailgate_instance
    mg.write_imap()
    master = mg.start()
    for command, number, name, action in (
        ("reopen", 10, "SIGUSR1", "reopening logs"),
        ("reload", 1, "SIGHUP", "reconfiguring"),
        ("quit", 3, "SIGQUIT", "shutting down"),
    ):
        proc = mg.run("-s", command)
        assert proc.returncode == 0, proc.stderr
        mg.wait_log(r"\[notice\] %d#\d+: signal %d \(%s\) received from %d, %s$"
                    % (master, number, name, proc.pid, action))
    assert mg.launcher.wait(WAIT) == 0
    assert not mg.pid_path.exists()


def test_stop_command(mailgate_instance):
    mg = mailgate_instance
    mg.write_imap()
    master = mg.start()
    workers = mg.workers()
    proc = mg.run("-s", "stop")
    assert proc.returncode == 0
    assert mg.launcher.wait(WAIT) == 0
    assert not any(pid_alive(pid) for pid in workers)
    mg.wait_log(r"signal 15 \(SIGTERM\) received from %d, exiting$" % proc.pid)
    assert not mg.pid_path.exists()
    assert master not in mg.workers()

"""Worker set-up as nginx's: user, limits, directory, environment; titles; fatal exits."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from mailgate.process.system import _set_environment

from tests.process.conftest import GREETING, WAIT, greeting, imap_session, wait_for
from tests.support.procs import pid_alive


def status(pid: int, field: str) -> list[str]:
    text = Path("/proc/%d/status" % pid).read_text()
    return re.search(r"^%s:\s+(.*)$" % field, text, re.MULTILINE).group(1).split()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_workers_run_as_user_and_master_stays_root(mailgate_instance):
    mg = mailgate_instance
    port = mg.write_imap(main="user nobody nogroup;")
    master = mg.start()
    assert status(master, "Uid")[0] == "0"
    for pid in mg.workers():
        # a worker switches once its proxy has read the certificates
        wait_for(lambda pid=pid: status(pid, "Uid") == ["65534"] * 4, what="the user switch")
        assert status(pid, "Gid") == ["65534"] * 4
        assert status(pid, "Groups") == ["65534"]
    assert greeting(port) == GREETING
    # a log file the master makes on reopen is handed to the workers' user
    mg.error_log.rename(mg.error_log.with_name("error.log.1"))
    mg.signal(signal.SIGUSR1)
    wait_for(mg.error_log.exists, what="a new error log")
    wait_for(lambda: mg.error_log.stat().st_uid == 65534, what="the chown")


def test_rlimit_and_working_directory(mailgate_instance, tmp_path):
    mg = mailgate_instance
    (tmp_path / "wd").mkdir()
    mg.write_imap(main="worker_rlimit_nofile 1234;\nworking_directory %s/wd;" % tmp_path)
    master = mg.start()
    for pid in mg.workers():
        limits = Path("/proc/%d/limits" % pid).read_text()
        assert re.search(r"^Max open files\s+1234\s+1234\s", limits, re.MULTILINE)
        wait_for(lambda pid=pid: os.readlink("/proc/%d/cwd" % pid) == str(tmp_path / "wd"),
                 what="chdir")
    assert os.readlink("/proc/%d/cwd" % master) != str(tmp_path / "wd")


def test_fatal_worker_start_is_not_respawned(mailgate_instance, tmp_path):
    mg = mailgate_instance
    mg.write_imap(main="working_directory %s/missing;" % tmp_path)
    mg.start_background()
    wait_for(lambda: mg.read_pid() is not None, "the pid file")
    master = mg.master
    log = mg.wait_log(r"cannot be respawned$", count=2)
    assert re.search(r'\[emerg\] \d+#\d+: chdir\("%s/missing"\) failed '
                     r'\(2: No such file or directory\)' % tmp_path, log)
    assert re.search(r"\[alert\] %d#%d: worker process \d+ exited with fatal code 2 and cannot be "
                     r"respawned" % (master, master), log)
    time.sleep(0.3)
    assert mg.workers() == [] and pid_alive(master)
    assert log.count("start worker process ") == 2


def test_environment_keeps_only_env_and_tz():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the environment of this process must not change: do it in a child
        try:
            os.environ.update(TZ="UTC", KEEP="kept", DROP="dropped")
            _set_environment(("KEEP", "SET=value", "ABSENT"))
            os.write(write_end, repr(sorted(os.environ.items())).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        result = pipe.read()
    os.waitpid(pid, 0)
    assert result == repr([("KEEP", "kept"), ("SET", "value"), ("TZ", "UTC")])


def test_terminate_kills_a_worker_that_does_not_stop(mailgate_instance):
    mg = mailgate_instance
    mg.write_imap()
    master = mg.start()
    stuck, other = mg.workers()
    os.kill(stuck, signal.SIGSTOP)
    started = time.monotonic()
    mg.signal(signal.SIGTERM)
    assert mg.launcher.wait(WAIT) == 0
    elapsed = time.monotonic() - started
    log = mg.log()
    assert "[alert] %d#%d: worker process %d exited on signal 9\n" % (master, master, stuck) in log
    assert "worker process %d exited with code 0" % other in log
    assert 1.0 < elapsed < WAIT


def test_process_titles(mailgate_instance):
    pytest.importorskip("setproctitle")
    mg = mailgate_instance
    port = mg.write_imap(workers=1)
    master = mg.start()
    (worker,) = mg.workers()
    # a process sets its title as it starts: wait for it rather than race it
    wait_for(lambda: _title(master).startswith("mailgate: master process mailgate -p %s" % mg.root),
             what="the master's title")
    wait_for(lambda: _title(worker) == "mailgate: worker process", what="the worker's title")
    session = imap_session(port)
    mg.signal(signal.SIGQUIT)
    wait_for(lambda: _title(worker) == "mailgate: worker process is shutting down",
             what="the shutting-down title")
    session.close()
    assert mg.launcher.wait(WAIT) == 0


def _title(pid: int) -> str:
    return Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")[0].decode()

"""Operating-system side of the processes: daemon, titles, event loop, worker settings.

The worker settings are nginx's ``ngx_worker_process_init``: environment
(``env``), ``worker_rlimit_nofile``, then, when started as root, the ``user``
and group, then ``working_directory``.  They come in two halves because the
proxy reads its certificates and keys between them, still as root (nginx's
master reads them).  A failure that nginx calls fatal ends
the worker with exit code 2, which the master does not respawn.
"""

from __future__ import annotations

import asyncio
import grp
import mmap
import os
import platform
import pwd
import resource
import selectors
from collections.abc import Callable

from mailgate.config import MainConfig
from mailgate.oserror import os_error_text

__all__ = [
    "FATAL",
    "WorkerInitError",
    "apply_worker_limits",
    "daemonize",
    "drop_privileges",
    "event_method",
    "loop_choice",
    "new_event_loop",
    "os_status",
    "redirect_stderr",
    "resident_memory",
    "set_title",
]

FATAL = 2  # a worker exit code that stops respawning, as nginx's

try:  # the process title shown by ps: optional, as nginx's is a nicety too
    from setproctitle import setproctitle as _setproctitle
except ImportError:  # pragma: no cover - depends on the environment
    _setproctitle = None

try:
    import uvloop as _uvloop
except ImportError:  # pragma: no cover - depends on the environment
    _uvloop = None


class WorkerInitError(Exception):
    """A worker cannot start (its message is logged at emerg or alert)."""


def set_title(title: str) -> None:
    """``mailgate: master process ...`` / ``mailgate: worker process`` in ps."""
    if _setproctitle is not None:
        _setproctitle("mailgate: " + title)


LOOP_VARIABLE = "MAILGATE_LOOP"
LOOPS = ("uvloop", "asyncio")


def loop_choice() -> str:
    """The workers' event loop: ``MAILGATE_LOOP`` (``uvloop`` or ``asyncio``) when set,
    else uvloop when it is installed, else asyncio's own.

    Raises WorkerInitError for a value that cannot be honoured.
    """
    wanted = os.environ.get(LOOP_VARIABLE, "")
    if not wanted:
        return "uvloop" if _uvloop is not None else "asyncio"
    if wanted not in LOOPS:
        raise WorkerInitError('%s="%s": use "uvloop" or "asyncio"' % (LOOP_VARIABLE, wanted))
    if wanted == "uvloop" and _uvloop is None:
        raise WorkerInitError("%s=uvloop, but uvloop is not installed" % LOOP_VARIABLE)
    return wanted


def new_event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """A fresh event loop for a worker: ``choice`` is what ``loop_choice()`` said, asked
    before the worker's environment is reset (``env``)."""
    if choice == "uvloop":
        return _uvloop.new_event_loop()
    return asyncio.new_event_loop()


def event_method() -> str:
    """The kernel's event mechanism under the loop (libuv and asyncio pick the same)."""
    return selectors.DefaultSelector.__name__.replace("Selector", "").lower()


def os_status() -> list[str]:
    """nginx's start-up notices about the system."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return [
        "OS: %s %s" % (platform.system(), platform.release()),
        "getrlimit(RLIMIT_NOFILE): %s:%s" % (_limit(soft), _limit(hard)),
    ]


def _limit(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def daemonize() -> Callable[[bool], None]:
    """Fork into the background in a new session; returns the child's ``detach(ok)``.

    Unlike nginx (ngx_daemon() in src/os/unix/ngx_daemon.c), whose parent exits at
    once, the parent here waits until the child calls ``detach`` (once the pid file is
    written) and exits 0, or 1 if the child failed or died: a service manager may read
    the pid file as soon as the command returns (docs/differences.md#processes).  Until
    then the child keeps the caller's stderr, so a failure is seen there; ``detach``
    moves stdin, stdout and stderr to /dev/null.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        status = b""
        while True:
            try:
                chunk = os.read(read_end, 1)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if not chunk:
                break
            status = chunk
        os._exit(0 if status == b"0" else 1)
    os.close(read_end)
    os.setsid()
    os.umask(0)

    def detach(ok: bool) -> None:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.write(write_end, b"0" if ok else b"1")
        os.close(write_end)

    return detach


def resident_memory(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (/proc/PID/statm), 0 if it is gone."""
    try:
        with open("/proc/%d/statm" % pid, "rb") as f:
            return int(f.read().split()[1]) * mmap.PAGESIZE
    except (OSError, IndexError, ValueError):
        return 0


def redirect_stderr(fd: int | None) -> None:
    """Send stderr to the main error_log file, as nginx does (a traceback lands there)."""
    if fd is not None and fd != 2:
        os.dup2(fd, 2)


def apply_worker_limits(main: MainConfig, log) -> None:
    """The first half of nginx's worker set-up: environment and ``worker_rlimit_nofile``."""
    _set_environment(main.env)
    if main.worker_priority:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, main.worker_priority)
        except OSError as exc:
            log.log("alert", "setpriority(%d) failed %s" % (main.worker_priority, _why(exc)))
    if main.worker_rlimit_nofile is not None:
        n = main.worker_rlimit_nofile
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        except (OSError, ValueError) as exc:
            log.log("alert", "setrlimit(RLIMIT_NOFILE, %d) failed %s" % (n, _why(exc)))


def drop_privileges(main: MainConfig) -> None:
    """The second half: ``user`` (when root) and ``working_directory``; WorkerInitError
    when the worker must not run."""
    if os.geteuid() == 0:
        _switch_user(*main.user)
    if main.working_directory:
        try:
            os.chdir(main.working_directory)
        except OSError as exc:
            raise WorkerInitError('chdir("%s") failed %s'
                                  % (main.working_directory, os_error_text(exc))) from None


def _why(exc: Exception) -> str:
    return os_error_text(exc) if isinstance(exc, OSError) else "(%s)" % exc


def _set_environment(env: tuple[str, ...]) -> None:
    """Keep only the ``env`` variables (and TZ), with the values ``env NAME=VALUE`` gives."""
    wanted: dict[str, str] = {}
    names = [item.partition("=")[0] for item in env]
    for item in env if "TZ" in names else (*env, "TZ"):
        name, eq, value = item.partition("=")
        if eq:
            wanted[name] = value
        elif name in os.environ:
            wanted[name] = os.environ[name]
    os.environ.clear()
    os.environ.update(wanted)


def _switch_user(user: str, group: str) -> None:
    uid = pwd.getpwnam(user).pw_uid
    gid = grp.getgrnam(group).gr_gid
    for call, what in (
        (lambda: os.setgid(gid), "setgid(%d)" % gid),
        (lambda: os.initgroups(user, gid), "initgroups(%s, %d)" % (user, gid)),
        (lambda: os.setuid(uid), "setuid(%d)" % uid),
    ):
        try:
            call()
        except OSError as exc:
            raise WorkerInitError("%s failed %s" % (what, os_error_text(exc))) from None

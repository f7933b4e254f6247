"""Process signals as nginx names, waits for and reports them; ``mailgate -s``.

The master and the workers block the signals they act on and take them with
``sigwaitinfo``: the sender's PID then appears in the log line as in nginx
(``signal 1 (SIGHUP) received from 1234, reconfiguring``), a signal sent
before the handlers are ready is never lost (it stays pending), and nothing
runs inside an asynchronous handler.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

from mailgate.config import ConfigError, load_config
from mailgate.oserror import os_error_text

__all__ = [
    "COMMANDS",
    "MASTER_SIGNALS",
    "WORKER_SIGNALS",
    "block",
    "received",
    "send_command",
    "wait",
    "watch",
]

# what ``-s NAME`` sends
COMMANDS = {
    "stop": signal.SIGTERM,
    "quit": signal.SIGQUIT,
    "reopen": signal.SIGUSR1,
    "reload": signal.SIGHUP,
}

WORKER_SIGNALS = frozenset({
    signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH,
    signal.SIGTERM, signal.SIGINT, signal.SIGQUIT,
})
MASTER_SIGNALS = WORKER_SIGNALS | {signal.SIGCHLD}


def block(signals: frozenset[int]) -> None:
    """Hold ``signals`` pending in this thread (and the threads and children it makes)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)


def wait(signals: frozenset[int], timeout: float | None) -> signal.struct_siginfo | None:
    """The next of the blocked ``signals``, or None after ``timeout`` seconds."""
    if timeout is None:
        return signal.sigwaitinfo(signals)
    return signal.sigtimedwait(signals, max(timeout, 0.0))


def watch(signals: frozenset[int],
          deliver: Callable[[signal.struct_siginfo], None]) -> threading.Thread:
    """Take the blocked ``signals`` in a thread and hand each to ``deliver``.

    ``deliver`` runs in that thread: an event loop's ``call_soon_threadsafe``
    wrapper carries it over.  The thread ends when ``deliver`` raises.
    """

    def run() -> None:
        while True:
            info = signal.sigwaitinfo(signals)
            try:
                deliver(info)
            except Exception:  # noqa: BLE001 - the loop is gone: the thread ends
                return

    thread = threading.Thread(target=run, name="signals", daemon=True)
    thread.start()
    return thread


def received(info: signal.struct_siginfo, action: str) -> str:
    """nginx's line for a signal: ``signal 15 (SIGTERM) received from 1234, exiting``."""
    name = signal.Signals(info.si_signo).name
    sender = " from %d" % info.si_pid if info.si_pid else ""
    return "signal %d (%s) received%s%s" % (info.si_signo, name, sender, action)


def send_command(name: str, opts, log, prefix: str) -> int:
    """``mailgate -s NAME``: signal the master named in the ``pid`` file; 0 or 1.

    The configuration is read (``-c``, ``-g``) only to find the pid file, as
    nginx does; the messages are nginx's.
    """
    try:
        config = load_config(opts.conf_file, prefix, directives=opts.directives)
    except ConfigError as exc:
        log.log("emerg", str(exc))
        return 1
    log.log("notice", "signal process started")
    path = config.main.pid
    try:
        with open(path, "rb") as file:
            data = file.read(22)  # NGX_INT64_LEN + 2
    except OSError as exc:
        log.log("error", 'open() "%s" failed %s' % (path, os_error_text(exc)))
        return 1
    text = data.rstrip(b"\r\n")
    pid = int(text) if text.isdigit() and len(text) < 20 else 0
    if pid <= 0:
        log.log("error", 'invalid PID number "%s" in "%s"'
                % (text.decode("latin-1"), path))
        return 1
    signo = COMMANDS[name]
    try:
        os.kill(pid, signo)
    except OSError as exc:
        log.log("alert", "kill(%d, %d) failed %s" % (pid, signo, os_error_text(exc)))
        return 1
    return 0

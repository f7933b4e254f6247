"""A worker process: the proxy on a fresh event loop, driven by the master's signals.

Signals (nginx's worker semantics):

* QUIT: stop accepting, let the sessions finish (all of them, or until
  ``worker_shutdown_timeout``, when the rest are closed with ``shutdown
  timeout``), exit.  A worker of a previous configuration gets it on reload
  and serves its sessions to their end with that configuration.
* TERM, INT: exit at once, closing every connection.
* USR1: reopen the log files.
* WINCH: as QUIT when the process is a daemon (nginx's "stop accepting").
* HUP, USR2: ignored (the master handles them).

The master sends its commands as signals; a worker logs the
``signal ... received`` line only for a signal from someone else, which
matches what nginx shows (its master uses a channel instead).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import traceback

from mailgate.process import signals, system
from mailgate.process.cycle import Cycle

__all__ = ["Worker"]


class Worker:
    """The body of one worker process (runs in the forked child)."""

    def __init__(self, cycle: Cycle, master_pid: int, daemonized: bool, stats_memory=None):
        self.cycle = cycle
        self.stats_memory = stats_memory  # the worker's slot of the master's StatsArea
        self.log = cycle.log
        self.master_pid = master_pid
        self.daemonized = daemonized
        self.proxy = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Future | None = None
        self._closing: asyncio.Task | None = None

    def run(self) -> int:
        """Serve until told to stop; the process exit code (``system.FATAL``: do not respawn)."""
        config = self.cycle.config
        system.set_title("worker process")
        # MAILGATE_LOOP is read before "env" resets the environment (the master checked it)
        loop_choice = system.loop_choice()
        system.apply_worker_limits(config.main, self.log)
        from mailgate.proxy.mailproxy import MailProxy

        loop = self.loop = system.new_event_loop(loop_choice)
        asyncio.set_event_loop(loop)
        self._exit = loop.create_future()
        self.proxy = MailProxy(
            config,
            sockets=self.cycle.sockets,
            zones=self.cycle.zones,
            log_files=self.cycle.log_files,
            contexts=self.cycle.contexts,
            stats_memory=self.stats_memory,
            # a worker also spends a connection on every listening socket and, in
            # nginx, one on its channel to the master
            connection_limit=config.main.worker_connections - len(self.cycle.sockets) - 1,
        )
        try:
            loop.run_until_complete(self.proxy.start())
        except Exception as exc:  # noqa: BLE001 - a worker that cannot serve is not respawned
            self.log.log("emerg", "worker process cannot start: %s" % exc)
            return system.FATAL
        # the proxy has read its certificates and keys as root, as nginx's master does;
        # the switch comes before the loop runs on to serve anyone
        try:
            system.drop_privileges(config.main)
        except system.WorkerInitError as exc:
            self.log.log("emerg", str(exc))
            return system.FATAL
        signals.watch(signals.WORKER_SIGNALS, self._deliver)
        # what exists now (modules, configuration, contexts) lives as long as the worker:
        # keep the cyclic collector from walking it again and again
        gc.freeze()
        loop.run_until_complete(self._exit)
        self.log.log("notice", "exit")
        return 0

    def _deliver(self, info: signal.struct_siginfo) -> None:
        self.loop.call_soon_threadsafe(self.on_signal, info)

    def on_signal(self, info: signal.struct_siginfo) -> None:
        """Act on one signal (on the loop)."""
        signo = info.si_signo
        if signo in (signal.SIGTERM, signal.SIGINT):
            action, handler = ", exiting", self.terminate
        elif signo == signal.SIGQUIT or (signo == signal.SIGWINCH and self.daemonized):
            action, handler = ", shutting down", self.shutdown
        elif signo == signal.SIGUSR1:
            action, handler = ", reopening logs", self.reopen
        elif signo == signal.SIGWINCH:
            action, handler = "", None
        else:
            action, handler = ", ignoring", None
        if info.si_pid != self.master_pid:
            self.log.log("notice", signals.received(info, action))
        if handler is not None:
            handler()

    def shutdown(self) -> None:
        """QUIT: stop accepting and let the sessions end (graceful)."""
        self.log.log("notice", "gracefully shutting down")
        if self._closing is not None:
            return
        system.set_title("worker process is shutting down")
        self._closing = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        timeout = self.cycle.config.main.worker_shutdown_timeout
        await self.proxy.close(graceful=True, timeout=timeout)
        self._finish()

    def terminate(self) -> None:
        """TERM/INT: close every connection and exit now."""
        self.proxy.stop_accepting()
        self.proxy.close_sessions()
        self._finish()

    def reopen(self) -> None:
        """USR1: reopen the log files (the rotated ones are let go)."""
        self.log.log("notice", "reopening logs")
        self.proxy.flush_access_logs()
        self.cycle.log_files.reopen()
        system.redirect_stderr(self.cycle.first_log_file())

    def _finish(self) -> None:
        if not self._exit.done():
            self.proxy.flush_access_logs()  # a fast stop too writes the buffered lines
            self.log.log("notice", "exiting")
            self._exit.set_result(None)


def run_worker(cycle: Cycle, master_pid: int, daemonized: bool, stats_memory=None) -> None:
    """The forked child's whole life: never returns.  ``stats_memory``: where it counts."""
    code = 1
    try:
        code = Worker(cycle, master_pid, daemonized, stats_memory).run()
    except BaseException as exc:  # noqa: BLE001 - a bug: say so where the operator looks, die
        try:
            cycle.log.log("alert", "worker process failed: %r" % exc)
            traceback.print_exc()  # stderr is the error_log file when there is one
        finally:
            os._exit(1)
    os._exit(code)

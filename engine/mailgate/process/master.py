"""The master process of the ``mailgate`` binary, with nginx's process model.

The master reads and checks the configuration, opens the log files, binds
every listening socket and creates the shared zones, then (``daemon on``)
goes to the background, writes the ``pid`` file and forks
``worker_processes`` workers.  Afterwards it only waits for signals:

* HUP: reload.  The configuration is read again; on any error the master logs
  it at emerg and goes on with the old one.  Otherwise sockets of unchanged
  addresses are kept, new ones bound, removed ones closed; shared zones of the
  same name and size are kept; new workers start on the new configuration and
  the old ones get QUIT, so their sessions end on the configuration they began
  with.
* QUIT: graceful stop (workers drain, then the master exits).
* TERM, INT: fast stop (TERM to the workers, SIGKILL after about 1.5 s).
* USR1: reopen the log files, then the workers'.
* WINCH (daemon only): workers stop gracefully, the master stays (HUP brings
  them back).
* CHLD: a worker ended; one that was not told to end is logged and replaced.

The workers count into memory the master maps before it forks them (``StatsArea``, a
slot each; a replacement worker takes over the slot of the one it replaces), and the
master serves ``status_listen`` (``StatusServer``) from those counters, its workers and
whether it drains.

Log lines are nginx's, at nginx's levels.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass

from mailgate._version import __version__
from mailgate.config import ConfigError, ConfigMessage, load_config
from mailgate.oserror import os_error_text
from mailgate.process import signals, system
from mailgate.process.cycle import Cycle
from mailgate.process.pidfile import create_pidfile, delete_pidfile
from mailgate.process.stats_area import StatsArea
from mailgate.process.worker import run_worker

__all__ = ["Master", "run"]

RELOAD_PAUSE = 0.1  # nginx lets new workers start before it stops the old ones
KILL_AFTER = 1.0  # the doubling TERM interval beyond which workers get SIGKILL
FIRST_DELAY = 0.05
STATS_SLOTS = 64  # counter slots at least: workers of a reload drain beside the new ones


@dataclass
class _WorkerRecord:
    pid: int
    generation: int
    exiting: bool = False
    respawn: bool = True


def run(opts, log, prefix: str) -> int:
    """``mailgate`` without ``-t``: send ``-s`` or run the master; the exit status."""
    if opts.signal:
        return signals.send_command(opts.signal, opts, log, prefix)
    from mailgate.tls import SessionZones

    zones = SessionZones()
    try:
        system.loop_choice()  # a MAILGATE_LOOP that cannot be honoured stops here
        config = load_config(opts.conf_file, prefix, directives=opts.directives,
                             on_message=log.message)
        cycle = Cycle.open(config, zones, on_message=log.message)
    except (ConfigError, system.WorkerInitError) as exc:
        log.log("emerg", str(exc))
        zones.close()
        return 1
    if not config.main.master_process:  # docs/differences.md#configuration
        log.log("notice", '"master_process off" is ignored: a master process runs the workers')
    return Master(opts, prefix, cycle, log).run()


class Master:
    """The master's state and its signal loop."""

    def __init__(self, opts, prefix: str, cycle: Cycle, startup_log):
        self.opts = opts
        self.prefix = prefix
        self.cycle = cycle
        self.zones = cycle.zones
        self.startup_log = startup_log
        self.pid = os.getpid()
        self.daemonized = False
        self.generation = 0
        self.workers: dict[int, _WorkerRecord] = {}
        # what the signals asked for, acted on by the loop
        self.reap = self.quit = self.terminate = False
        self.reconfigure = self.reopen = self.noaccept = False
        self.closed_listening = False
        self.accepting = True  # False once WINCH stopped the workers (until HUP)
        self.started = time.time()
        self.stats_area = StatsArea(max(STATS_SLOTS, 4 * cycle.config.main.worker_processes))
        self.status = None  # the StatusServer, with status_listen

    @property
    def log(self):
        return self.cycle.log

    # -- start ---------------------------------------------------------------------------

    def run(self) -> int:
        """Start the workers and serve signals until the end; the exit status."""
        config = self.cycle.config
        self.log.log("notice", 'using the "%s" event method' % system.event_method())
        self.log.log("notice", "mailgate/%s" % __version__)
        for line in system.os_status():
            self.log.log("notice", line)
        signals.block(signals.MASTER_SIGNALS)
        detach = None
        if config.main.daemon:
            detach = system.daemonize()
            self.daemonized = True
            self.pid = os.getpid()
        try:
            create_pidfile(config.main.pid, self.pid)
        except ConfigError as exc:
            self._startup_failure(str(exc))
            if detach is not None:
                detach(False)
            self.cycle.release()
            self.zones.close()
            return 1
        try:
            self.status = self._status_server(config)
        except ConfigError as exc:
            self._startup_failure(str(exc))
            if detach is not None:
                detach(False)
            delete_pidfile(config.main.pid, self.log)
            self.cycle.release()
            self.zones.close()
            return 1
        if detach is not None:
            detach(True)
        system.redirect_stderr(self.cycle.first_log_file())
        system.set_title("master process mailgate %s" % " ".join(sys.argv[1:]))
        self.start_workers()
        return self.serve()

    # -- status ------------------------------------------------------------------------

    def _status_server(self, config):
        """The status server of ``status_listen`` (started), or None without one."""
        if not config.status_listen:
            return None
        from mailgate.process.status import StatusServer

        server = StatusServer(config.status_listen, config.status_allow, self.facts)
        server.start()
        return server

    @property
    def draining(self) -> bool:
        """Whether the node takes no new sessions: QUIT received, or WINCH."""
        return self.quit or self.terminate or not self.accepting

    def facts(self) -> dict:
        """What the status server shows: the counters summed over the workers, the
        workers, and whether the node drains (called from the status server's threads)."""
        workers = [{"pid": pid, "slot": slot, "rss_bytes": system.resident_memory(pid)}
                   for pid, slot in sorted(self.stats_area.holders().items())]
        return {
            "version": __version__,
            "pid": self.pid,
            "uptime": round(time.time() - self.started, 3),
            "draining": self.draining,
            "workers": workers,
            "stats": self.stats_area.snapshot(),
        }

    def _startup_failure(self, message: str) -> None:
        self.log.log("emerg", message)
        if not self.cycle.logs_to_stderr():
            self.startup_log.log("emerg", message)

    # -- workers -------------------------------------------------------------------------

    def start_workers(self) -> None:
        self.log.log("notice", "start worker processes")
        for _ in range(self.cycle.config.main.worker_processes):
            self.spawn()

    def spawn(self) -> None:
        """Fork one worker on the current cycle, counting into a free slot of the area."""
        slot = self.stats_area.take()
        if slot is None:
            self.log.log("warn", "no free counter slot: the new worker's counts are its own")
        try:
            pid = os.fork()
        except OSError as exc:
            self.log.log("alert", 'fork() failed while spawning "worker process" %s'
                         % os_error_text(exc))
            return
        if pid == 0:
            if self.status is not None:
                self.status.close_in_child()
            run_worker(self.cycle, self.pid, self.daemonized,
                       None if slot is None else self.stats_area.view(slot))
        if slot is not None:
            self.stats_area.hold(pid, slot)
        self.log.log("notice", "start worker process %d" % pid)
        self.workers[pid] = _WorkerRecord(pid, self.generation)

    def signal_workers(self, signo: int, *, old_only: bool = False) -> None:
        """Send ``signo`` to the workers (QUIT skips those already ending)."""
        for record in list(self.workers.values()):
            if old_only and record.generation == self.generation:
                continue
            if signo == signal.SIGQUIT and record.exiting:
                continue
            try:
                os.kill(record.pid, signo)
            except OSError as exc:
                self.log.log("alert", "kill(%d, %d) failed %s" % (record.pid, signo, os_error_text(exc)))
                self.reap = True
                continue
            if signo != signal.SIGUSR1:
                record.exiting = True

    def reap_children(self) -> None:
        """Collect ended children; log them as nginx does; replace the unexpected ones."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            record = self.workers.pop(pid, None)
            self.stats_area.release(pid)
            name = "worker process" if record is not None else "unknown process"
            if os.WIFSIGNALED(status):
                core = " (core dumped)" if os.WCOREDUMP(status) else ""
                self.log.log("alert", "%s %d exited on signal %d%s"
                             % (name, pid, os.WTERMSIG(status), core))
                code = None
            else:
                code = os.WEXITSTATUS(status)
                self.log.log("notice", "%s %d exited with code %d" % (name, pid, code))
            if record is None:
                continue
            if code == system.FATAL and record.respawn:
                self.log.log("alert", "%s %d exited with fatal code %d and cannot be respawned"
                             % (name, pid, code))
                record.respawn = False
            if record.respawn and not record.exiting and not (self.terminate or self.quit):
                self.spawn()

    # -- the loop ------------------------------------------------------------------------

    def serve(self) -> int:
        delay = 0.0
        deadline = 0.0
        while True:
            timeout = max(deadline - time.monotonic(), 0.0) if delay else None
            info = signals.wait(signals.MASTER_SIGNALS, timeout)
            while info is not None:  # act once on everything that is pending
                self.on_signal(info)
                info = signals.wait(signals.MASTER_SIGNALS, 0)

            if self.reap:
                self.reap = False
                self.reap_children()
            if not self.workers and (self.terminate or self.quit):
                return self.exit()

            if self.terminate:
                now = time.monotonic()
                if not delay:
                    delay, deadline = FIRST_DELAY, now + FIRST_DELAY
                    self.signal_workers(signal.SIGTERM)
                elif now >= deadline:
                    delay *= 2
                    deadline = now + delay
                    self.signal_workers(signal.SIGKILL if delay > KILL_AFTER else signal.SIGTERM)
                continue
            if self.quit:
                self.signal_workers(signal.SIGQUIT)
                if not self.closed_listening:
                    self.closed_listening = True
                    self.cycle.close_listening()
                continue
            if self.reconfigure:
                self.reconfigure = False
                self.reload()
            if self.reopen:
                self.reopen = False
                self.log.log("notice", "reopening logs")
                self.cycle.reopen_logs()
                system.redirect_stderr(self.cycle.first_log_file())
                self.signal_workers(signal.SIGUSR1)
            if self.noaccept:
                self.noaccept = False
                self.accepting = False
                self.signal_workers(signal.SIGQUIT)

    def on_signal(self, info: signal.struct_siginfo) -> None:
        """Note what a signal asks for and log it."""
        signo = info.si_signo
        action = ""
        if signo == signal.SIGQUIT:
            self.quit = True
            action = ", shutting down"
        elif signo in (signal.SIGTERM, signal.SIGINT):
            self.terminate = True
            action = ", exiting"
        elif signo == signal.SIGWINCH:
            # a terminal sends WINCH on resize: only a daemon takes it as a command
            if self.daemonized:
                self.noaccept = True
                action = ", stop accepting connections"
        elif signo == signal.SIGHUP:
            self.reconfigure = True
            action = ", reconfiguring"
        elif signo == signal.SIGUSR1:
            self.reopen = True
            action = ", reopening logs"
        elif signo == signal.SIGUSR2:
            # nginx's binary upgrade is not supported (docs/differences.md#processes)
            action = ", ignoring"
        elif signo == signal.SIGCHLD:
            self.reap = True
        self.log.log("notice", signals.received(info, action))

    # -- reload and exit -----------------------------------------------------------------

    def _message(self, item: ConfigMessage) -> None:
        self.log.log(item.level, str(item))

    def reload(self) -> None:
        """HUP: a new cycle and new workers, or the old ones go on (error logged at emerg)."""
        self.log.log("notice", "reconfiguring")
        old = self.cycle
        new_pid = None
        try:
            config = load_config(self.opts.conf_file, self.prefix,
                                 directives=self.opts.directives, on_message=self._message)
            if config.main.pid != old.config.main.pid:
                create_pidfile(config.main.pid, self.pid)
                new_pid = config.main.pid
            cycle = Cycle.open(config, self.zones, previous=old, on_message=self._message)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the old configuration goes on
            if isinstance(exc, ConfigError):
                self.log.log("emerg", str(exc))
            else:
                self.log.log("alert", "reconfiguration failed: %r" % exc)
                traceback.print_exc()  # stderr is the error_log file when there is one
            if new_pid is not None:
                delete_pidfile(new_pid, self.log)
            return
        if new_pid is not None:
            delete_pidfile(old.config.main.pid, self.log)
        self.cycle = cycle
        self.generation += 1
        self.accepting = True
        old.release(successor=cycle)
        self._reload_status(old.config, config)
        system.redirect_stderr(cycle.first_log_file())
        self.log.log("notice", 'using the "%s" event method' % system.event_method())
        self.start_workers()
        time.sleep(RELOAD_PAUSE)
        self.signal_workers(signal.SIGQUIT, old_only=True)

    def _reload_status(self, old, new) -> None:
        """A reload with other ``status_listen``/``status_allow``: a new status server
        (a failed bind is logged; the node serves on, without one)."""
        if (old.status_listen, old.status_allow) == (new.status_listen, new.status_allow):
            return
        if self.status is not None:
            self.status.close()
            self.status = None
        try:
            self.status = self._status_server(new)
        except ConfigError as exc:
            self.log.log("emerg", str(exc))

    def exit(self) -> int:
        """Every worker has ended: remove the pid file, close everything, exit 0."""
        if self.status is not None:
            self.status.close()
        delete_pidfile(self.cycle.config.main.pid, self.log)
        self.log.log("notice", "exit")
        self.cycle.release()
        self.zones.close()
        return 0

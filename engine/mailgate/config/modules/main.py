"""The main and ``events {}`` contexts: process settings, ``include``, the blocks.

An nginx.conf can be given as it is: its ``http {}`` and ``stream {}`` blocks are
skipped with a notice, ``load_module`` lines are accepted and ignored (the mail
modules are built in), and only the ``mail {}`` block is served.
"""

from __future__ import annotations

import glob
import grp
import os
import pwd
from typing import Any

from mailgate.config.model import LogTarget, MainConfig
from mailgate.config.modules._logs import parse_error_log
from mailgate.config.registry import (
    UNSET,
    Call,
    Ctx,
    Directive,
    Handler,
    Level,
    Merge,
    flag_slot,
    msec_slot,
    num_slot,
    str_array_slot,
    str_slot,
)
from mailgate.config.values import atoi

__all__ = ["DIRECTIVES", "build_main"]

MODULE = "ngx_core_module"
EVENT_METHODS = ("epoll", "poll", "select")
_GLOB_CHARS = set("*?[")


def _include(call: Call) -> None:
    pattern = call.loader.full_name(call.args[0])
    if not _GLOB_CHARS & set(pattern):
        call.loader.read_file(pattern, call)
        return
    for path in sorted(glob.glob(pattern)):
        if os.path.isdir(path):
            continue
        call.loader.read_file(path, call)


def _events(call: Call) -> None:
    if call.loader.events is not None:
        raise call.slot_error("is duplicate")
    level = Level(Ctx.EVENTS, call.file, call.line)
    call.loader.events = level
    call.loader.parse_block(level, Ctx.EVENTS)


def _mail(call: Call) -> None:
    if call.loader.mail is not None:
        raise call.slot_error("is duplicate")
    level = Level(Ctx.MAIL, call.file, call.line)
    call.loader.mail = level
    call.loader.mail_end = call.loader.parse_block(level, Ctx.MAIL)


def _skipped_block(call: Call) -> None:
    call.loader.message(
        "notice",
        'the "%s" block is ignored: mailgate serves only the mail block' % call.name,
        call.file,
        call.line,
    )
    call.loader.skip_block()


def _load_module(call: Call) -> None:
    base = os.path.basename(call.args[0])
    what = "the mail modules are part of mailgate" if "mail" in base else "only the mail block is served"
    call.loader.message(
        "notice", 'the "load_module" directive is ignored, %s' % what, call.file, call.line
    )


def _ignored(call: Call) -> None:
    call.loader.message(
        "notice", 'the "%s" directive has no effect in mailgate' % call.name, call.file, call.line
    )


def _worker_processes(call: Call) -> None:
    if call.name in call.level:
        raise call.slot_error("is duplicate")
    if call.args[0] == "auto":
        call.store("auto")
        return
    value = atoi(call.args[0])
    if value is None:
        raise call.slot_error("invalid value")
    call.store(value)


def _user(call: Call) -> None:
    if call.name in call.level:
        raise call.slot_error("is duplicate")
    # nginx passes the names to getpwnam()/getgrnam() as C strings: each ends at its first
    # NUL (Python's would raise ValueError)
    user = call.args[0].partition("\0")[0]
    group = call.args[1].partition("\0")[0] if len(call.args) > 1 else user
    if os.geteuid() != 0:
        call.warn(
            'the "user" directive makes sense only if the master process runs '
            "with super-user privileges, ignored"
        )
        return
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise call.error('getpwnam("%s") failed' % user) from None
    try:
        grp.getgrnam(group)
    except KeyError:
        raise call.error('getgrnam("%s") failed' % group) from None
    call.store((user, group))


def _error_log(call: Call) -> None:
    call.append(parse_error_log(call))


def _use(call: Call) -> None:
    if call.name in call.level:
        raise call.slot_error("is duplicate")
    if call.args[0] not in EVENT_METHODS:
        raise call.error('invalid event type "%s"' % call.args[0])
    call.store(call.args[0])


def _worker_priority(call: Call) -> None:
    text = call.args[0]
    value = atoi(text[1:]) if text.startswith("-") else atoi(text)
    if value is None:
        raise call.slot_error("invalid number")
    call.store(-value if text.startswith("-") else value)


def _d(name: str, context: Ctx, nargs: tuple[int, int | None], handler: Handler,
       merge: Merge = Merge.NONE, **kw: Any) -> Directive:
    """A directive of this module; without a ``doc_default``, its ``default`` (a number,
    a path) is documented as it is."""
    if "default" in kw and "doc_default" not in kw:
        kw["doc_default"] = str(kw["default"])
    return Directive(name, MODULE, context, nargs, handler, merge=merge, **kw)


def _flag(name: str, context: Ctx, default: bool, summary: str) -> Directive:
    """An ``on | off`` directive: its syntax and documented default follow from its name
    and default."""
    return _d(name, context, (1, 1), flag_slot, default=default, syntax=name + " on | off;",
              doc_default="on" if default else "off", summary=summary)


DIRECTIVES = (
    _d("include", Ctx.ANY, (1, 1), _include, syntax="include file | mask;",
       summary="Reads other files (glob patterns allowed) in place of the directive."),
    _flag("daemon", Ctx.MAIN, True, "Detach from the terminal and run in the background."),
    _flag("master_process", Ctx.MAIN, True,
          "Accepted; off is ignored with a notice (a master always runs the workers)."),
    _d("worker_processes", Ctx.MAIN, (1, 1), _worker_processes, default=1,
       syntax="worker_processes number | auto;",
       summary="Number of worker processes; auto means one per CPU."),
    _d("pid", Ctx.MAIN, (1, 1), str_slot, default="logs/mailgate.pid", syntax="pid file;",
       summary="Where the master writes its process ID."),
    _d("error_log", Ctx.MAIN | Ctx.MAIL | Ctx.SERVER, (1, None), _error_log, merge=Merge.CUSTOM,
       syntax="error_log file | stderr | syslog:server=address[,parameter=value] | memory:size [level];",
       doc_default="stderr error",
       summary="Where errors and session events are logged, from which level on; "
               "several may be given."),
    # nginx's default is chosen when it is built (docs/differences.md#configuration)
    _d("user", Ctx.MAIN, (1, 2), _user, default=("nobody", "nogroup"), syntax="user user [group];",
       doc_default="nobody nogroup",
       summary="The user and group workers run as (when started as root)."),
    _d("worker_rlimit_nofile", Ctx.MAIN, (1, 1), num_slot, syntax="worker_rlimit_nofile number;",
       summary="Limit on open files (RLIMIT_NOFILE) for workers."),
    _d("worker_shutdown_timeout", Ctx.MAIN, (1, 1), msec_slot,
       syntax="worker_shutdown_timeout time;",
       summary="How long a worker that is shutting down gracefully waits for sessions."),
    _d("working_directory", Ctx.MAIN, (1, 1), str_slot, syntax="working_directory directory;",
       summary="The current directory of worker processes."),
    _d("worker_priority", Ctx.MAIN, (1, 1), _worker_priority, default=0,
       syntax="worker_priority number;", summary="Scheduling priority (nice value) of workers."),
    _d("env", Ctx.MAIN, (1, 1), str_array_slot, syntax="env variable[=value];",
       summary="Environment variables kept or set for workers."),
    _d("load_module", Ctx.MAIN, (1, 1), _load_module, syntax="load_module file;",
       summary="Accepted and ignored: the mail modules are built in."),
    *(
        _d(name, Ctx.MAIN, nargs, _ignored, syntax=syntax,
           summary="Accepted for nginx.conf compatibility; no effect.")
        for name, nargs, syntax in (
            ("worker_cpu_affinity", (1, None), "worker_cpu_affinity cpumask ...;"),
            ("worker_rlimit_core", (1, 1), "worker_rlimit_core size;"),
            ("timer_resolution", (1, 1), "timer_resolution interval;"),
            ("pcre_jit", (1, 1), "pcre_jit on | off;"),
            ("lock_file", (1, 1), "lock_file file;"),
            ("thread_pool", (1, 3), "thread_pool name threads=number [max_queue=number];"),
            ("ssl_engine", (1, 1), "ssl_engine device;"),
        )
    ),
    _d("events", Ctx.MAIN, (0, 0), _events, block=True, syntax="events { ... }",
       summary="Connection processing settings."),
    _d("worker_connections", Ctx.EVENTS, (1, 1), num_slot, default=512,
       syntax="worker_connections number;",
       summary="Maximum simultaneous connections per worker (client and backend sides)."),
    _d("use", Ctx.EVENTS, (1, 1), _use, syntax="use method;",
       summary="Accepted (epoll, poll, select); the event loop chooses its own method."),
    _flag("multi_accept", Ctx.EVENTS, False, "Accept all pending connections at once."),
    _flag("accept_mutex", Ctx.EVENTS, False, "Accepted; workers accept in turn through the kernel."),
    _d("accept_mutex_delay", Ctx.EVENTS, (1, 1), msec_slot, syntax="accept_mutex_delay time;",
       doc_default="500ms", summary="Accepted for compatibility."),
    _d("debug_connection", Ctx.EVENTS, (1, 1), str_array_slot,
       syntax="debug_connection address | CIDR | unix:;",
       summary="Accepted for compatibility."),
    _d("http", Ctx.MAIN, (0, 0), _skipped_block, block=True, syntax="http { ... }",
       summary="Skipped with a notice: mailgate serves only mail."),
    _d("stream", Ctx.MAIN, (0, 0), _skipped_block, block=True, syntax="stream { ... }",
       summary="Skipped with a notice: mailgate serves only mail."),
    _d("mail", Ctx.MAIN, (0, 0), _mail, block=True, syntax="mail { ... }",
       summary="The mail proxy configuration."),
)

_BY_NAME = {d.name: d for d in DIRECTIVES}


def _value(level: Level | None, name: str):
    value = level.get(name) if level is not None else UNSET
    return _BY_NAME[name].default if value is UNSET else value


def build_main(loader) -> MainConfig:
    """The main and events settings, with defaults applied."""
    main, events = loader.main, loader.events
    workers = _value(main, "worker_processes")
    error_log = main.get("error_log")
    if error_log is UNSET:
        error_log = (LogTarget("stderr", "error"),)
    shutdown = main.get("worker_shutdown_timeout")
    return MainConfig(
        worker_processes=(os.cpu_count() or 1) if workers == "auto" else workers,
        worker_processes_auto=workers == "auto",
        pid=loader.full_name(_value(main, "pid"), conf_prefix=False),
        error_log=error_log,
        daemon=_value(main, "daemon"),
        master_process=_value(main, "master_process"),
        user=_value(main, "user"),
        worker_rlimit_nofile=main.get("worker_rlimit_nofile", None),
        worker_priority=_value(main, "worker_priority"),
        worker_shutdown_timeout=None if shutdown is UNSET else shutdown,
        working_directory=main.get("working_directory", None),
        env=main.get("env", ()),
        worker_connections=_value(events, "worker_connections"),
        events_use=events.get("use", None) if events is not None else None,
        multi_accept=_value(events, "multi_accept"),
        accept_mutex=_value(events, "accept_mutex"),
    )

"""mailgate_mail_log_module (mailgate's own): ``log_format`` and ``access_log``.

In the style of nginx's stream log module (src/stream/ngx_stream_log_module.c):
``log_format name [escape=default|json|none] string ...;`` in mail{}, its strings
joined, ``$name`` and ``${name}`` naming variables; ``access_log path [format
[buffer=size] [flush=time]] | syslog:... [format] | off;`` in mail{} and server{},
several at one level all written, a level with its own replacing the inherited
ones.  A format must be declared before an ``access_log`` names it, an unknown
variable or format is an error, as in nginx.  One line per session, at its end.
"""

from __future__ import annotations

import re

from mailgate.config.model import AccessLogTarget, LogFormat
from mailgate.config.modules._logs import parse_syslog
from mailgate.config.registry import Call, Ctx, Directive, Merge
from mailgate.config.values import parse_size, parse_time

__all__ = ["DEFAULT_FORMAT", "DIRECTIVES", "VARIABLES", "compile_format"]

MODULE = "mailgate_mail_log_module"

VARIABLES = (
    "time_local", "time_iso8601", "msec", "connection", "pid",
    "remote_addr", "remote_port", "proxy_protocol_addr", "server_addr", "server_port",
    "server_name", "protocol", "login", "auth_status", "upstream_addr",
    "upstream_connect_time", "session_time", "bytes_sent", "bytes_received",
    "ssl_protocol", "ssl_cipher", "ssl_session_reused", "ssl_server_name",
    "ssl_client_s_dn", "close_reason",
)
"""The variables an access log line may hold (``proxy.record`` gives their values)."""

DEFAULT_FORMAT_TEXT = ('$remote_addr [$time_local] $protocol "$login" $auth_status '
                       '$upstream_addr $bytes_sent $bytes_received $session_time '
                       '$ssl_protocol $close_reason')
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]*))")
_ESCAPES = ("default", "json", "none")


def _split(text: str) -> tuple[tuple[bool, str], ...]:
    """The parts of a format's text: (False, literal) and (True, variable name);
    ValueError with nginx's message (ngx_stream_log_compile_format()) for a bad one."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for match in _VARIABLE.finditer(text):
        if match.start() > pos:
            parts.append((False, text[pos:match.start()]))
        braced = match.group(1) is not None
        variable = match.group(1) if braced else match.group(2)
        if not braced and text[match.start() + 1:match.start() + 2] == "{":
            raise ValueError('the closing bracket in "%s" variable is missing'
                             % text[match.start() + 2:])
        if not variable:
            raise ValueError('invalid variable name in "%s"' % text)
        if variable not in VARIABLES:
            raise ValueError('unknown "%s" variable' % variable)
        parts.append((True, variable))
        pos = match.end()
    if pos < len(text):
        parts.append((False, text[pos:]))
    return tuple(parts)


def compile_format(call: Call, name: str, escape: str, text: str) -> LogFormat:
    """The format ``name``; ``[emerg] unknown "x" variable`` (and nginx's other
    complaints) at the directive for a bad text."""
    try:
        return LogFormat(name, escape, _split(text))
    except ValueError as exc:
        raise call.error(str(exc)) from None


DEFAULT_FORMAT = LogFormat("main", "default", _split(DEFAULT_FORMAT_TEXT))
"""The format of an ``access_log`` that names none: ``main`` (DEFAULT_FORMAT_TEXT)."""


def _formats(call: Call) -> dict[str, LogFormat]:
    mail = call.loader.mail
    return mail.values.setdefault("log_format", {}) if mail is not None else {}


def _log_format(call: Call) -> None:
    name, *strings = call.args
    formats = _formats(call)
    if name in formats or name == DEFAULT_FORMAT.name:
        raise call.error('duplicate "log_format" name "%s"' % name)
    escape = "default"
    if strings and strings[0].startswith("escape="):
        escape = strings.pop(0)[7:]
        if escape not in _ESCAPES:
            raise call.error('unknown log format escaping "%s"' % escape)
    if not strings:
        raise call.error('invalid number of arguments in "log_format" directive')
    formats[name] = compile_format(call, name, escape, "".join(strings))
    call.level.locations.setdefault("log_format", (call.file, call.line))


def _access_log(call: Call) -> None:
    current = call.level.values.get("access_log")
    if call.args[0] == "off":
        if len(call.args) > 1:
            raise call.error('invalid parameter "%s"' % call.args[1])
        call.store(())
        return
    if current == ():
        raise call.error('"access_log off" and another access_log at one level')
    path, *rest = call.args
    log_format = DEFAULT_FORMAT
    if rest and "=" not in rest[0]:
        name = rest.pop(0)
        if name != DEFAULT_FORMAT.name:
            log_format = _formats(call).get(name)
            if log_format is None:
                raise call.error('unknown log format "%s"' % name)
    options: dict = {}
    for param in rest:
        key, _, value = param.partition("=")
        if key == "buffer" and value:
            size = parse_size(value)
            if not size:
                raise call.error('invalid buffer size "%s"' % value)
            options["buffer"] = size
        elif key == "flush" and value:
            seconds = parse_time(value, seconds=False)
            if not seconds:
                raise call.error('invalid flush time "%s"' % value)
            options["flush"] = seconds / 1000
        else:
            raise call.error('invalid parameter "%s"' % param)
    if "flush" in options and "buffer" not in options:
        raise call.error("no buffer is defined for access_log \"%s\"" % path)
    if path.startswith("syslog:"):
        if options:
            raise call.error("parameter \"%s\" is not allowed with syslog" % next(iter(options)))
        target = AccessLogTarget(log_format, syslog=parse_syslog(call, path[7:], "info"))
    else:
        target = AccessLogTarget(log_format, path=call.loader.full_name(path, conf_prefix=False),
                                 **options)
    call.append(target)




DIRECTIVES = (
    Directive("log_format", MODULE, Ctx.MAIL, (2, None), _log_format, merge=Merge.NONE,
              own=True, syntax="log_format name [escape=default|json|none] string ...;",
              doc_default="main (README)",
              summary="Declares a format of access log lines: text and variables ($remote_addr, "
                      "$login, $auth_status, $upstream_addr, $bytes_sent, $ssl_protocol ...; "
                      "README, Operating mailgate)."),
    Directive("access_log", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), _access_log, default=(),
              own=True,
              syntax="access_log path [format [buffer=size] [flush=time]] | syslog:server=address"
                     "[,parameter=value] [format] | off;",
              doc_default="off",
              summary="Writes one line per finished session; reopened on USR1."),
)

"""``error_log`` values (main, mail{} and server{} contexts), as ``ngx_log_set_log``."""

from __future__ import annotations

import socket

from mailgate.config.addresses import AddressError, parse_url
from mailgate.config.model import LogTarget
from mailgate.config.registry import Call
from mailgate.config.values import parse_size
from mailgate.log import LEVELS, SYSLOG_FACILITIES

__all__ = ["parse_error_log", "parse_syslog"]

_DEBUG_LEVELS = (
    "debug_core", "debug_alloc", "debug_mutex", "debug_event",
    "debug_http", "debug_mail", "debug_stream",
)
_TAG_MAX = 32


def _level(call: Call) -> str:
    if len(call.args) == 1:
        return "error"
    level = None
    debug = False
    for word in call.args[1:]:
        if word in LEVELS:
            if level is not None or debug:
                raise call.error('duplicate log level "%s"' % word)
            level = word
        elif word in _DEBUG_LEVELS:
            if level is not None:
                raise call.error('invalid log level "%s"' % word)
            debug = True
        else:
            raise call.error('invalid log level "%s"' % word)
    return "debug" if debug else level  # type: ignore[return-value]


def parse_syslog(call: Call, spec: str, level: str) -> LogTarget:
    """``syslog:`` parameters (after the prefix) as nginx's ngx_syslog_process_conf()."""
    options: dict = {"facility": "local7", "tag": "nginx", "severity": None, "nohostname": False}
    address = None
    for param in spec.split(","):
        key, eq, value = param.partition("=")
        if key == "server" and eq:
            try:
                parsed = parse_url(value, default_port=514)
            except AddressError as exc:
                raise call.error('%s in syslog server "%s"' % (exc, value)) from None
            first = parsed.addresses[0]
            address = first.host if first.family == socket.AF_UNIX else (first.host, first.port)
        elif key == "facility" and eq:
            if value not in SYSLOG_FACILITIES:
                raise call.error('unknown syslog facility "%s"' % value)
            options["facility"] = value
        elif key == "severity" and eq:
            if value not in LEVELS:
                raise call.error('unknown syslog severity "%s"' % value)
            options["severity"] = value
        elif key == "tag" and eq:
            if len(value) > _TAG_MAX:
                raise call.error("syslog tag length exceeds %d" % _TAG_MAX)
            if not all(c.isascii() and (c.isalnum() or c == "_") for c in value):
                raise call.error('syslog "tag" only allows alphanumeric characters and underscore')
            options["tag"] = value
        elif param == "nohostname":
            options["nohostname"] = True
        else:
            raise call.error('unknown syslog parameter "%s"' % param)
    if address is None:
        raise call.error("no syslog server specified")
    return LogTarget("syslog", level, address=address, **options)


def parse_error_log(call: Call) -> LogTarget:
    """One ``error_log`` directive's destination and level."""
    target = call.args[0]
    level = _level(call)
    if target == "stderr":
        return LogTarget("stderr", level)
    if target.startswith("memory:"):
        size = parse_size(target[7:])
        if not size:
            raise call.error('invalid buffer size "%s"' % target[7:])
        return LogTarget("memory", level, size=size)
    if target.startswith("syslog:"):
        return parse_syslog(call, target[7:], level)
    return LogTarget("file", level, path=call.loader.full_name(target, conf_prefix=False))

"""ngx_mail_core_module: ``server``, ``listen``, ``protocol`` and the session basics."""

from __future__ import annotations

import socket

from mailgate.config.addresses import AddressError, parse_url
from mailgate.config.errors import ConfigError
from mailgate.config.model import Listen, MainConfig, Resolver
from mailgate.config.registry import (
    Call,
    Ctx,
    Directive,
    Level,
    Merge,
    msec_slot,
    num_slot,
    str_slot,
)
from mailgate.config.values import atoi, parse_size, parse_time
from mailgate.inet import sock_ntop

__all__ = ["DIRECTIVES", "PROTOCOL_PORTS", "merge"]

MODULE = "ngx_mail_core_module"
MAIL_SERVER = Ctx.MAIL | Ctx.SERVER

# listen ports that select a protocol when `protocol` is not given (first port only)
PROTOCOL_PORTS = {143: "imap", 993: "imap", 110: "pop3", 995: "pop3", 25: "smtp", 465: "smtp", 587: "smtp"}


def _server(call: Call) -> None:
    level = Level(Ctx.SERVER, call.file, call.line)
    call.loader.servers.append(level)
    call.loader.parse_block(level, Ctx.SERVER)
    if "listen" not in level:
        raise ConfigError('no "listen" is defined for server', level.file, level.line)


def _keepalive(call: Call, spec: str) -> dict:
    """``so_keepalive=on|off|[idle]:[intvl]:[cnt]``."""
    if spec == "on":
        return {"so_keepalive": True}
    if spec == "off":
        return {"so_keepalive": False}
    parts = spec.split(":", 2) + ["", ""]
    idle, intvl, cnt = parts[0], parts[1], parts[2]
    values = {}
    for key, text, seconds in (("tcp_keepidle", idle, True), ("tcp_keepintvl", intvl, True),
                               ("tcp_keepcnt", cnt, False)):
        if not text:
            continue
        value = parse_time(text, seconds=True) if seconds else atoi(text)
        if value is None:
            raise call.error('invalid so_keepalive value: "%s"' % spec)
        values[key] = value
    if not any(values.values()):
        raise call.error('invalid so_keepalive value: "%s"' % spec)
    return {"so_keepalive": True, **values}


def _listen_params(call: Call) -> dict:
    params: dict = {}
    for word in call.args[1:]:
        key, eq, value = word.partition("=")
        if word == "bind":
            params["bind"] = True
        elif word == "ssl":
            params["ssl"] = True
            call.level.tls_location = (call.file, call.line)
        elif word == "proxy_protocol":
            params["proxy_protocol"] = True
        elif word == "multipath":
            params["multipath"] = params["bind"] = True
        elif key == "backlog" and eq:
            backlog = atoi(value)
            if not backlog:
                raise call.error('invalid backlog "%s"' % word)
            params["backlog"] = backlog
            params["bind"] = True
        elif key in ("rcvbuf", "sndbuf") and eq:
            size = parse_size(value)
            if size is None:
                raise call.error('invalid %s "%s"' % (key, word))
            params[key] = size
            params["bind"] = True
        elif word.startswith("ipv6only=o"):
            if word[10:] not in ("n", "ff"):
                raise call.error('invalid ipv6only flags "%s"' % word[9:])
            params["ipv6only"] = word[10:] == "n"
            params["bind"] = True
        elif key == "so_keepalive" and eq:
            params.update(_keepalive(call, value))
            params["bind"] = True
        else:
            raise call.error('invalid parameter "%s"' % word)
    return params


def _listen(call: Call) -> None:
    try:
        url = parse_url(call.args[0], listen=True)
    except AddressError as exc:
        raise call.error('%s in "%s" of the "listen" directive' % (exc, call.args[0])) from None
    if "protocol" not in call.level and url.port in PROTOCOL_PORTS:
        call.level.values["protocol"] = PROTOCOL_PORTS[url.port]
    params = _listen_params(call)
    ports = range(url.port, (url.last_port or url.port) + 1)
    listens = []
    for address in url.addresses:
        for port in ports if address.family != socket.AF_UNIX else (0,):
            text = sock_ntop(address.family, address.host, port)
            key = (address.family, address.host, port)
            if key in call.loader.listen_addresses:
                raise call.error('duplicate "%s" address and port pair' % text)
            call.loader.listen_addresses.add(key)
            listens.append(
                Listen(address.host, port, address.family, text, file=call.file, line=call.line,
                       **params)
            )
    call.extend(listens)


def _protocol(call: Call) -> None:
    if call.args[0] not in ("imap", "pop3", "smtp"):
        raise call.error('unknown protocol "%s"' % call.args[0])
    call.store(call.args[0])


def _resolver(call: Call) -> None:
    if call.name in call.level:
        raise call.slot_error("is duplicate")
    if call.args[0] == "off":
        call.store(None)
        return
    servers: list[tuple[str, int]] = []
    options: dict = {}
    for word in call.args:
        key, eq, value = word.partition("=")
        if eq and key == "valid":
            seconds = parse_time(value, seconds=True)
            if seconds is None:
                raise call.error("invalid parameter: %s" % word)
            options["valid"] = seconds
        elif eq and key in ("ipv4", "ipv6"):
            if value not in ("on", "off"):
                raise call.error("invalid parameter: %s" % word)
            options[key] = value == "on"
        else:
            try:
                url = parse_url(word, default_port=53)
            except AddressError as exc:
                raise call.error('%s in resolver "%s"' % (exc, word)) from None
            servers.extend((a.host, a.port) for a in url.addresses if a.family != socket.AF_UNIX)
    if not options.get("ipv4", True) and not options.get("ipv6", True):
        raise call.error('"ipv4" and "ipv6" cannot both be "off"')
    if not servers:
        raise call.error("no name servers defined")
    call.store(Resolver(tuple(servers), **options))


def _d(name, nargs, handler, **kw) -> Directive:
    return Directive(name, MODULE, kw.pop("context", MAIL_SERVER), nargs, handler, **kw)


DIRECTIVES = (
    _d("server", (0, 0), _server, context=Ctx.MAIL, block=True, merge=Merge.NONE,
       syntax="server { ... }", summary="A virtual server: its listen sockets and settings."),
    _d("listen", (1, None), _listen, context=Ctx.SERVER, merge=Merge.CUSTOM,
       syntax="listen address:port [ssl] [proxy_protocol] [backlog=number] [rcvbuf=size] "
              "[sndbuf=size] [bind] [ipv6only=on|off] [multipath] "
              "[so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt]];",
       since="port ranges 1.15.10; proxy_protocol 1.19.8; multipath 1.29.7",
       summary="Address and port of a listening socket (IPv6, unix: and port ranges too)."),
    _d("protocol", (1, 1), _protocol, context=Ctx.SERVER, merge=Merge.SERVER_ONLY,
       default=None, syntax="protocol imap | pop3 | smtp;", doc_default="by port",
       summary="The server's protocol; otherwise derived from the first listen port."),
    _d("server_name", (1, 1), str_slot, merge=Merge.CUSTOM, syntax="server_name name;",
       doc_default="hostname",
       summary="Name used in the SMTP greeting, HELO/EHLO and SASL salts."),
    _d("timeout", (1, 1), msec_slot, default=60.0, syntax="timeout time;", doc_default="60s",
       summary="Total time a client has from the greeting to finished authentication."),
    _d("resolver", (1, None), _resolver, default=None,
       syntax="resolver address ... [valid=time] [ipv4=on|off] [ipv6=on|off] | off;",
       doc_default="off", summary="DNS servers used to find SMTP clients' host names."),
    _d("resolver_timeout", (1, 1), msec_slot, default=30.0, syntax="resolver_timeout time;",
       doc_default="30s", summary="Timeout of a name resolution."),
    _d("max_errors", (1, 1), num_slot, default=5, syntax="max_errors number;", doc_default="5",
       since="1.21.0", summary="Invalid commands after which the connection is closed."),
)


def merge(step, main: MainConfig) -> None:
    """Protocol, listens, server_name and error_log of one server."""
    values = step.values
    if values["protocol"] is None:
        raise step.error("unknown mail protocol for server")
    values["listens"] = step.server.get("listen")
    values["server_name"] = step.inherited("server_name", "") or step.loader.machine_hostname()
    values["error_log"] = step.inherited("error_log", main.error_log)

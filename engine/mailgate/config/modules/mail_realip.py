"""ngx_mail_realip_module: trusted sources of the PROXY protocol client address."""

from __future__ import annotations

import socket

from mailgate.config.addresses import AddressError, parse_url
from mailgate.config.registry import Call, Ctx, Directive
from mailgate.inet import ptocidr

__all__ = ["DIRECTIVES"]

MODULE = "ngx_mail_realip_module"


def _network(call: Call, text: str) -> tuple[str, ...]:
    """An address or CIDR (host bits masked with a warning), or every address of a name."""
    cidr = ptocidr(text)
    if cidr is not None:
        network, low_bits = cidr
        if low_bits:
            call.warn("low address bits of %s are meaningless" % text)
        return (str(network),)
    try:
        addresses = parse_url(text).addresses
    except AddressError:
        raise call.error('host not found in set_real_ip_from "%s"' % text) from None
    return tuple(str(ptocidr(a.host)[0]) for a in addresses if a.family != socket.AF_UNIX)


def _set_real_ip_from(call: Call) -> None:
    text = call.args[0]
    entries = ("unix:",) if text == "unix:" else _network(call, text)
    call.extend(entries)


DIRECTIVES = (
    Directive("set_real_ip_from", MODULE, Ctx.MAIL | Ctx.SERVER, (1, 1), _set_real_ip_from,
              default=(), syntax="set_real_ip_from address | CIDR | unix:;", since="1.19.8",
              summary="Peers whose PROXY protocol header supplies the client address."),
)

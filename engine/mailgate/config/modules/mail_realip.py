"""ngx_mail_realip_module: trusted sources of the PROXY protocol client address."""

from __future__ import annotations

import ipaddress
import socket

from mailgate.config.addresses import AddressError, parse_url
from mailgate.config.registry import Call, Ctx, Directive

__all__ = ["DIRECTIVES"]

MODULE = "ngx_mail_realip_module"


def _network(call: Call, text: str) -> tuple[str, ...]:
    """An address or CIDR (host bits masked with a warning), or every address of a name."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    else:
        if "/" in text and network.network_address != ipaddress.ip_interface(text).ip:
            call.warn("low address bits of %s are meaningless" % text)
        return (str(network),)
    try:
        addresses = parse_url(text).addresses
    except AddressError:
        raise call.error('host not found in set_real_ip_from "%s"' % text) from None
    return tuple(
        str(ipaddress.ip_network(a.host)) for a in addresses if a.family != socket.AF_UNIX
    )


def _set_real_ip_from(call: Call) -> None:
    text = call.args[0]
    entries = ("unix:",) if text == "unix:" else _network(call, text)
    call.extend(entries)


DIRECTIVES = (
    Directive("set_real_ip_from", MODULE, Ctx.MAIL | Ctx.SERVER, (1, 1), _set_real_ip_from,
              default=(), syntax="set_real_ip_from address | CIDR | unix:;", since="1.19.8",
              summary="Peers whose PROXY protocol header supplies the client address."),
)

"""mailgate_mail_status_module (mailgate's own): ``status_listen`` and ``status_allow``.

The master serves, on each ``status_listen`` address, the live status page (``GET /``),
its facts as JSON (``GET /status.json``), the Prometheus metrics (``GET /metrics``) and
the health check for a load balancer (``GET /healthz``), from the counters every
worker keeps in memory the master shares.  ``status_allow`` names who may ask
(default: loopback only); anyone else gets 403.
"""

from __future__ import annotations

import socket

from mailgate.config.addresses import AddressError, parse_url
from mailgate.config.model import StatusListen
from mailgate.config.registry import UNSET, Call, Ctx, Directive, Level, Merge
from mailgate.inet import ptocidr

__all__ = ["DIRECTIVES", "build_mail"]

MODULE = "mailgate_mail_status_module"
LOOPBACK = ("127.0.0.0/8", "::1/128")


def _status_listen(call: Call) -> None:
    text = call.args[0]
    try:
        parsed = parse_url(text, listen=True)
    except AddressError as exc:
        raise call.error('%s in "%s" of the "status_listen" directive' % (exc, text)) from None
    if parsed.no_port or not parsed.addresses or parsed.addresses[0].family == socket.AF_UNIX:
        raise call.error('no port in "%s" of the "status_listen" directive' % text)
    address = parsed.addresses[0]
    listen = StatusListen(address.family, address.host, address.port, text)
    if listen in call.level.values.get("status_listen", ()):
        raise call.error('duplicate "%s" address and port pair' % text)
    call.append(listen)


def _status_allow(call: Call) -> None:
    text = call.args[0]
    if text == "all":
        call.extend(("0.0.0.0/0", "::/0"))
        return
    cidr = ptocidr(text)
    if cidr is None:
        raise call.error('invalid parameter "%s"' % text)
    network, low_bits = cidr
    if low_bits:
        call.warn("low address bits of %s are meaningless" % text)
    call.append(str(network))


def build_mail(mail: Level) -> dict:
    """The Config fields of this module's mail{} directives."""
    allow = mail.get("status_allow")
    return {
        "status_listen": tuple(mail.get("status_listen", ())),
        "status_allow": LOOPBACK if allow is UNSET else tuple(allow),
    }


DIRECTIVES = (
    Directive("status_listen", MODULE, Ctx.MAIL, (1, 1), _status_listen, merge=Merge.NONE,
              own=True, syntax="status_listen address:port;", doc_default="—",
              summary="Serves the status page (/), /status.json, Prometheus /metrics and "
                      "/healthz (200, 503 while draining); may repeat."),
    Directive("status_allow", MODULE, Ctx.MAIL, (1, 1), _status_allow, merge=Merge.NONE,
              own=True, syntax="status_allow address | CIDR | all;", doc_default="loopback",
              summary="Clients allowed on status_listen (others get 403); may repeat."),
)

"""ngx_mail_smtp_module: SMTP authentication methods, capabilities, buffer, delay."""

from __future__ import annotations

from mailgate.config.modules._protocol import capabilities_slot, client_buffer_directive
from mailgate.config.registry import Ctx, Directive, bitmask_slot, msec_slot
from mailgate.protocol.sasl import directive_summary, keywords

__all__ = ["DIRECTIVES", "AUTH_METHODS"]

MODULE = "ngx_mail_smtp_module"
# the smtp_auth values, from the method table of the protocol package
AUTH_METHODS = keywords("smtp")

DIRECTIVES = (
    client_buffer_directive("smtp", MODULE),
    Directive("smtp_greeting_delay", MODULE, Ctx.MAIL | Ctx.SERVER, (1, 1), msec_slot,
              default=0.0, syntax="smtp_greeting_delay time;", doc_default="0",
              summary="Delay before the greeting; clients that talk first are rejected."),
    Directive("smtp_capabilities", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), capabilities_slot,
              default=(), syntax="smtp_capabilities extension ...;",
              summary="Extensions listed in the EHLO reply."),
    Directive("smtp_auth", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), bitmask_slot(AUTH_METHODS),
              default=frozenset({"plain", "login"}), syntax="smtp_auth method ...;",
              doc_default="plain login", since="none 0.7.22; external 1.11.6",
              summary=f"Authentication methods: {directive_summary('smtp')}."),
)

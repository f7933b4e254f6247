"""ngx_mail_pop3_module: POP3 authentication methods and capabilities."""

from __future__ import annotations

from mailgate.config.modules._protocol import capabilities_slot
from mailgate.config.registry import Ctx, Directive, bitmask_slot
from mailgate.protocol.sasl import directive_summary, keywords

__all__ = ["DIRECTIVES", "AUTH_METHODS"]

MODULE = "ngx_mail_pop3_module"
# the pop3_auth values, from the method table of the protocol package
AUTH_METHODS = keywords("pop3")

DIRECTIVES = (
    Directive("pop3_capabilities", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), capabilities_slot,
              default=("TOP", "USER", "UIDL"), syntax="pop3_capabilities extension ...;",
              doc_default="TOP USER UIDL", summary="Capabilities listed by CAPA."),
    Directive("pop3_auth", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), bitmask_slot(AUTH_METHODS),
              default=frozenset({"plain"}), syntax="pop3_auth method ...;", doc_default="plain",
              since="external 1.11.6",
              summary=f"Authentication methods: {directive_summary('pop3')}."),
)

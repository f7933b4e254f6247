"""ngx_mail_imap_module: IMAP authentication methods, capabilities and buffer."""

from __future__ import annotations

from mailgate.config.modules._protocol import capabilities_slot, client_buffer_directive
from mailgate.config.registry import Ctx, Directive, bitmask_slot
from mailgate.protocol.sasl import directive_summary, keywords

__all__ = ["DIRECTIVES", "AUTH_METHODS"]

MODULE = "ngx_mail_imap_module"
# the imap_auth values, from the method table of the protocol package
AUTH_METHODS = keywords("imap")

DIRECTIVES = (
    client_buffer_directive("imap", MODULE),
    Directive("imap_capabilities", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), capabilities_slot,
              default=("IMAP4", "IMAP4rev1", "UIDPLUS"), syntax="imap_capabilities extension ...;",
              doc_default="IMAP4 IMAP4rev1 UIDPLUS",
              summary="Capabilities announced to clients before login."),
    Directive("imap_auth", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), bitmask_slot(AUTH_METHODS),
              default=frozenset({"plain"}), syntax="imap_auth method ...;", doc_default="plain",
              since="external 1.11.6",
              summary="Authentication methods announced and accepted: "
                      f"{directive_summary('imap')}."),
)

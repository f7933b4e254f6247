"""ngx_mail_imap_module: IMAP authentication methods, capabilities and buffer."""

from __future__ import annotations

from mailgate.config.modules._protocol import capabilities_slot, client_buffer_directive
from mailgate.config.registry import Call, Ctx, Directive, bitmask_slot
from mailgate.protocol.imap import ID_MAX_FIELD, ID_MAX_PAIRS, ID_MAX_VALUE
from mailgate.protocol.sasl import directive_summary, keywords

__all__ = ["DIRECTIVES", "AUTH_METHODS"]

MODULE = "ngx_mail_imap_module"
# the imap_auth values, from the method table of the protocol package
AUTH_METHODS = keywords("imap")



def _imap_id(call: Call) -> None:
    """``name value`` pairs (RFC 2971's limits), repeated directives adding to the list;
    or ``NIL``: no fields (a server's NIL hides mail{}'s fields)."""
    args = call.args
    if len(args) == 1 and args[0].upper() == "NIL":
        call.store([])
        return
    if len(args) % 2:
        raise call.error('invalid number of arguments in "%s" directive' % call.name)
    pairs = tuple(zip(args[::2], args[1::2]))
    for name, value in pairs:
        if len(name.encode("utf-8", "surrogateescape")) > ID_MAX_FIELD:
            raise call.error('"%s" field "%s" is longer than %d bytes'
                             % (call.name, name, ID_MAX_FIELD))
        if len(value.encode("utf-8", "surrogateescape")) > ID_MAX_VALUE:
            raise call.error('"%s" value of "%s" is longer than %d bytes'
                             % (call.name, name, ID_MAX_VALUE))
    if len(call.level.values.get(call.name, ())) + len(pairs) > ID_MAX_PAIRS:
        raise call.error('"%s" has more than %d fields' % (call.name, ID_MAX_PAIRS))
    call.extend(pairs)


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
    Directive("imap_id", MODULE, Ctx.MAIL | Ctx.SERVER, (1, None), _imap_id, default=(),
              syntax="imap_id name value ... | NIL;", doc_default="NIL", own=True,
              summary="The fields of the proxy's answer to a client's ID before login "
                      "(RFC 2971)."),
)

"""What the directive tables of the imap, pop3 and smtp modules declare alike."""

from __future__ import annotations

import mmap

from mailgate.config.registry import Call, Ctx, Directive, size_slot

__all__ = ["capabilities_slot", "client_buffer_directive"]


def capabilities_slot(call: Call) -> None:
    """Every argument is one capability; repeated directives add to the level's list."""
    call.extend(call.args)


def client_buffer_directive(protocol: str, module: str) -> Directive:
    """``imap_client_buffer`` / ``smtp_client_buffer``: the command buffer, a memory page
    by default (nginx's ngx_pagesize)."""
    name = protocol + "_client_buffer"
    return Directive(name, module, Ctx.MAIL | Ctx.SERVER, (1, 1), size_slot,
                     default=mmap.PAGESIZE, syntax=name + " size;", doc_default="4k",
                     summary=f"Buffer for {protocol.upper()} commands; a longer command line "
                             "closes the session.")

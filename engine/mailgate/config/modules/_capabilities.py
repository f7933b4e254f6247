"""The ``*_capabilities`` directives of the imap, pop3 and smtp modules."""

from __future__ import annotations

from mailgate.config.registry import Call

__all__ = ["capabilities_slot"]


def capabilities_slot(call: Call) -> None:
    """Every argument is one capability; repeated directives add to the level's list."""
    call.extend(call.args)

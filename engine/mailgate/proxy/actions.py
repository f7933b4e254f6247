"""The one dispatcher of the machines' actions.

A session carries out what its sans-I/O machine asks (``mailgate.protocol.events``)
by looking each action's type up in a table of its own handlers: the client session
for the client-facing machine, the backend session for the backend login machine.
Both tables carry out ``ArmTimer`` with the one handler here, :func:`arm_timer`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailgate.protocol.events import ArmTimer
    from mailgate.proxy.timers import Timed

__all__ = ["Handlers", "arm_timer", "run_actions"]

Handlers = Mapping[type, Callable[[object, object], "bool | None"]]
"""Action type → handler(owner, action); a handler returning True ends the run (the
session closed, or the rest belongs to another phase)."""


def run_actions(owner: object, handlers: Handlers, actions: Iterable) -> bool:
    """Carry out ``actions`` in order; True if a handler ended the run."""
    for action in actions:
        if handlers[type(action)](owner, action):
            return True
    return False


def arm_timer(owner: Timed, action: ArmTimer) -> None:
    """``ArmTimer``, carried out alike by both sessions: (re)arm the owner's one timeout."""
    owner.arm_timeout(action.seconds)

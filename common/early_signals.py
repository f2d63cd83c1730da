"""Signals the command took before the supervisor had its own handlers in place.

``fakeblock.control.cli.entry`` answers a SIGINT or SIGTERM during start-up by raising
:class:`~fakeblock.common.errors.Interrupted`.  Python can swallow an exception raised
from a signal handler: when the handler runs inside a weakref callback or a finaliser
(importlib's module-lock callbacks run during every import), the exception is only printed
as "Exception ignored" and the command goes on as if no signal had come.  So the handler
also notes the signal here, and the places that take over (the supervisor installing its
handlers, the entry point after a command returns) act on what is noted.
"""

from __future__ import annotations

_noted: list[int] = []


def note(signal_number: int) -> None:
    """Remember that ``signal_number`` arrived."""
    _noted.append(signal_number)


def take() -> tuple[int, ...]:
    """Every signal noted, first first; they are forgotten (someone now answers them)."""
    taken = tuple(_noted)
    _noted.clear()
    return taken

"""The lease message: a detect worker telling a capture it is there and ready for frames.

Each detect worker's DEALER says :class:`Ready` to every capture it reads, on connecting
and every ``runtime.READY_INTERVAL_S``; the capture leases its stream to one such peer at a time
(``capture/leases.py``).  The header is built and checked here; framing, the schema
version and the one ``encode``/``decode`` pair stay in :mod:`fakeblock.common.wire`,
which re-exports every name below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fakeblock.common import wire_fields as fields

# A worker reports how many streams it holds; no worker of a bounded site holds more.
MAX_LEASE_LOAD = 1 << 16


@dataclass(frozen=True)
class Ready:
    """A detect worker (``worker``: its name, for logs only) is ready for a capture's frames.

    ``load`` is how many streams it holds now, so a capture leasing a stream prefers an
    idle worker; ``tracking`` says whether it keeps tracks (then every frame of a stream
    must reach it alone) or scans each frame on its own (any such worker will do);
    ``spare`` says it stands by for a stream its site gives to another worker, so it is
    leased the stream only when no worker that is not a spare is ready (live failover).
    """

    worker: str
    load: int = 0
    tracking: bool = True
    spare: bool = False


def lease_header(message) -> dict | None:
    """The header (without schema version) of a lease message; None for any other message."""
    if isinstance(message, Ready):
        return {"kind": "ready", "worker": message.worker, "load": int(message.load),
                "tracking": bool(message.tracking), "spare": bool(message.spare)}
    return None


def _ready(header: dict) -> Ready:
    return Ready(fields.name(header, "worker"), fields.integer(header, "load", 0, MAX_LEASE_LOAD),
                 fields.boolean(header, "tracking"), fields.boolean(header, "spare"))


# The lease messages' decoders by kind; the wire's decoder looks every kind up here too.
LEASE_DECODERS: dict[str, Callable[[dict], Ready]] = {"ready": _ready}

"""Which detect worker gets a capture's frames: one lease per stream, sticky while its holder lives.

A detect worker keeps a stream's tracks, so every frame of the stream must reach one
worker, in order.  Each worker that reads this capture says
:class:`~fakeblock.common.wire.Ready` every ``READY_INTERVAL_S`` (``common/runtime.py``);
the capture leases its stream to one of them and keeps it there while that worker keeps
saying so.  A holder silent for longer than the lease
timeout, or one the socket can no longer reach, loses the lease, and the next frame
leases the stream again.  A live lease is never moved: a move restarts the stream's tracks.

A lease goes to the least loaded tracking worker (the fewest streams held, as its ready
messages say), so captures that lease one after another spread their streams over the
replicas without talking to each other, and a new replica gets the next new or orphaned
stream.  A spare (a worker whose site gives the stream to another) is leased the stream
only when no other tracking worker is ready, and at the start only once the worker meant
for it had the lease timeout to say so (so one worker does not take every camera of a
site while the others start up).  When the holder falls silent for the live
lease timeout (2 s), its stream moves to a ready spare with the next frame, and the
frames sent meanwhile found no room at the silent holder and were dropped and counted.
Ties (captures leasing at the same moment see equal loads) are broken by
rendezvous hashing, the highest hash of stream and routing id, so different streams pick
independently rather than all taking the first peer.  Workers that do not track (detect
with ``tracking`` off) need no lease: they take the frames in turn.

Pure and clock-injected (no sockets): ``tests/test_leases.py``.  The peer table is bounded
(``max_peers``): a flood of peers cannot grow memory, and live peers are never pushed out.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from fakeblock.common.runtime import LEASE_TIMEOUT_S
from fakeblock.common.wire import Ready
from fakeblock.common.wording import plural

LOGGER = logging.getLogger(__name__)
# Lossless: a lost holder's disconnection ends its lease at once; silence alone ends it
# only after this long, since moving a lossless lease restarts the stream's tracks in the
# middle of a replay, and a busy machine can hold a worker's ready messages back a while.
LOSSLESS_LEASE_TIMEOUT_S = 10.0
# Peers remembered at once: far more detect workers than any site runs.
MAX_PEERS = 256


def reader_label(identity: str) -> str:
    """``detect/0 on vm (pid 18667)`` for a worker that says it is ``detect/0@vm:18667``.

    The worker's number stays: a capture cannot know how many detect workers a site runs
    (one heard from may be one of several still starting), and a moved lease must name
    a different worker than the first.
    """
    name, _, place = identity.partition("@")
    host, _, pid = place.rpartition(":")
    if not pid.isdigit():
        return f"{name} on {place}" if place else name
    return f"{name} on {host} (pid {pid})"


def rendezvous_score(stream: str, peer: bytes) -> int:
    """A stable pseudo-random score of ``peer`` for ``stream`` (the highest wins a tie)."""
    digest = hashlib.blake2b(stream.encode() + b"\0" + peer, digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class Peer:
    """What a capture knows of one detect worker: when it last said ready, and what it said."""

    heard_s: float
    ready: Ready


class Leases:
    """The lease of one stream and the table of peers (routing ids) that said they are ready."""

    def __init__(self, stream: str, timeout_s: float = LEASE_TIMEOUT_S, max_peers: int = MAX_PEERS,
                 clock: Callable[[], float] = time.monotonic,
                 score: Callable[[str, bytes], int] = rendezvous_score):
        self.stream, self.timeout_s, self.max_peers = stream, timeout_s, max_peers
        self.clock, self.score = clock, score
        self.peers: dict[bytes, Peer] = {}
        self.holder: bytes | None = None
        self.granted = 0  # leases given: the first, then one per move
        self.started_s = clock()
        self._turn = 0

    def heard(self, peer: bytes, ready: Ready) -> bool:
        """Note that ``peer`` said ``ready``; False (and nothing kept) when the table is full of live peers."""
        now_s = self.clock()
        if peer not in self.peers and len(self.peers) >= self.max_peers:
            self._forget_silent(now_s)
            if len(self.peers) >= self.max_peers:
                return False
        self.peers[peer] = Peer(now_s, ready)
        return True

    def lost(self, peer: bytes) -> None:
        """``peer`` cannot be reached any more (it disconnected): forget it, and end its lease."""
        if peer == self.holder:
            LOGGER.warning("%s: %s is gone; the next ready detect worker takes its frames", self.stream,
                           self._reader(peer))
            LOGGER.debug("%s's lost holder was %s", self.stream, self._name(peer))
            self.holder = None
        self.peers.pop(peer, None)

    def live_count(self) -> int:
        """How many peers said ready within the timeout."""
        self._forget_silent(self.clock())
        return len(self.peers)

    def targets(self) -> tuple[bytes, ...]:
        """The peers to offer the next frame to, in order.

        The lease holder alone, leasing the stream first when nobody holds it; where no
        live peer tracks, every live peer, starting with the next in turn; none when no
        peer is live.
        """
        self._forget_silent(self.clock())
        if self.holder is not None:
            return (self.holder,)
        tracking = [peer for peer, known in self.peers.items() if known.ready.tracking]
        if tracking and all(self.peers[peer].ready.spare for peer in tracking) and not self._spares_allowed():
            return ()  # at the start only spares are ready: the stream's own worker gets its time
        if tracking:
            self.holder = min(tracking, key=lambda peer: (self.peers[peer].ready.spare, self.peers[peer].ready.load,
                                                          -self.score(self.stream, peer), peer))
            self.granted += 1
            LOGGER.info("%s: frames go to %s; %s ready", self.stream, self._reader(self.holder),
                        plural(len(self.peers), "detect worker"))
            LOGGER.debug("%s's holder is %s", self.stream, self._name(self.holder))
            return (self.holder,)
        peers = sorted(self.peers)
        if not peers:
            return ()
        self._turn = (self._turn + 1) % len(peers)
        return tuple(peers[self._turn:] + peers[:self._turn])

    def _spares_allowed(self) -> bool:
        """Whether a spare may have the stream: once it was leased before (failover), or the lease
        timeout after the start (the worker meant for it never said it is ready)."""
        return self.granted > 0 or self.clock() - self.started_s > self.timeout_s

    def _forget_silent(self, now_s: float) -> None:
        silent = [peer for peer, known in self.peers.items() if now_s - known.heard_s > self.timeout_s]
        for peer in silent:
            if peer == self.holder:
                LOGGER.warning("%s: %s was silent for %.1f s; the next ready detect worker takes its frames",
                               self.stream, self._reader(peer), now_s - self.peers[peer].heard_s)
                LOGGER.debug("%s's silent holder was %s", self.stream, self._name(peer))
                self.holder = None
            del self.peers[peer]

    def _reader(self, peer: bytes) -> str:
        """The worker reading ``peer``'s frames in plain words (see :func:`reader_label`)."""
        known = self.peers.get(peer)
        return reader_label(known.ready.worker) if known else peer.hex()

    def _name(self, peer: bytes) -> str:
        known = self.peers.get(peer)
        return f"{known.ready.worker} ({peer.hex()})" if known else peer.hex()

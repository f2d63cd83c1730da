"""Capture's end of the ``frames`` link: a ROUTER that sends each frame to its stream's lease holder.

Detect workers connect one DEALER each and say :class:`~fakeblock.common.wire.Ready`; this
end reads those messages into a :class:`~fakeblock.capture.leases.Leases` table and sends
every frame to the peer the table names.  The ROUTER assigns each connection its own
routing id, so a peer can neither choose its id nor take over another's.

``ROUTER_MANDATORY`` turns "no room at this peer" into ``zmq.Again`` and "no such peer any
more" into ``EHOSTUNREACH`` (the lease ends at once), instead of a silent drop.  libzmq's
POLLOUT on a ROUTER is not per peer, so a send that must wait retries every
``RETRY_INTERVAL_MS`` while it answers control orders and reads ready messages.  Every
message a peer sends is checked: one that is not a well-formed ``Ready`` is dropped and
counted (``malformed``, ``unexpected``), and the ROUTER refuses any part over
``MAX_READY_BYTES`` before it is read.
"""

from __future__ import annotations

import errno

import zmq

from fakeblock.capture.leases import Leases
from fakeblock.common import wire
from fakeblock.common.counters import LEASES, PEERS, PEERS_REFUSED, UNEXPECTED
from fakeblock.common.runtime import ZERO_COPY_MIN_BYTES, StageRuntime, receive_parts

# A ready message is a routing id and a small header; nothing larger is read.
MAX_READY_BYTES = 1024
# Messages read per call, so a flood of them cannot keep frames from being sent.
MAX_READS_PER_CALL = 256
RETRY_INTERVAL_MS = 10


class LeaseLink:
    """The ROUTER socket, its lease table, and the send that honours both."""

    def __init__(self, runtime: StageRuntime, endpoint: str, hwm: int, linger_ms: int | None, leases: Leases):
        self.runtime, self.leases = runtime, leases
        self.socket = runtime.socket(zmq.ROUTER, hwm, bind_to=endpoint, linger_ms=linger_ms,
                                     options={zmq.ROUTER_MANDATORY: 1, zmq.MAXMSGSIZE: MAX_READY_BYTES})

    def read_ready(self) -> None:
        """Take in the ready messages waiting (at most ``MAX_READS_PER_CALL``); drop and count bad ones."""
        for _ in range(MAX_READS_PER_CALL):
            try:
                parts = receive_parts(self.socket, zmq.NOBLOCK, max_parts=2, max_bytes=MAX_READY_BYTES)
                message = wire.decode(parts[1:])
            except zmq.Again:
                break
            except ValueError as error:
                self.runtime.drop_malformed(error)
                continue
            if not isinstance(message, wire.Ready):
                self.runtime.count(UNEXPECTED)
            elif not self.leases.heard(bytes(parts[0].buffer), message):
                self.runtime.count(PEERS_REFUSED)
        self.runtime.counters[PEERS] = self.leases.live_count()

    def has_reader(self) -> bool:
        """Whether some detect worker said it is ready, lately."""
        self.read_ready()
        return self.runtime.counters[PEERS] > 0

    def send(self, message: wire.Frame, block: bool, until_finish: bool = False) -> bool:
        """Send ``message`` to the lease holder (or a free non-tracking reader).

        ``block``: wait, however long, for a holder with room (lossless), giving up only on
        a stop order (or with ``until_finish`` a finish order); else give up at once (live).
        Returns whether it was sent.
        """
        frames = wire.encode(message)
        copy = sum(memoryview(frame).nbytes for frame in frames) < ZERO_COPY_MIN_BYTES
        while True:
            self.read_ready()
            sent, lost = self._try_targets(frames, copy)
            if sent:
                return True
            if lost:  # the holder is gone: lease the stream again at once
                continue
            runtime = self.runtime
            if not block or runtime.stop_requested or (until_finish and runtime.finish_requested):
                return False
            runtime.poll([], 0)  # stop orders and heartbeats
            self.socket.poll(RETRY_INTERVAL_MS, zmq.POLLIN)

    def _try_targets(self, frames: list, copy: bool) -> tuple[bool, bool]:
        """Offer the frame to each target in turn: (sent, some target was gone)."""
        lost = False
        targets = self.leases.targets()
        self.runtime.counters[LEASES] = self.leases.granted
        for peer in targets:
            try:
                self.socket.send_multipart([peer, *frames], flags=zmq.NOBLOCK, copy=copy)
                return True, lost
            except zmq.Again:  # no room at this peer: try the next, if any
                continue
            except zmq.ZMQError as error:
                if error.errno != errno.EHOSTUNREACH:
                    raise
                self.leases.lost(peer)
                lost = True
        return False, lost

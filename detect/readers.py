"""Detect's end of the ``frames`` links: one DEALER per capture this worker reads.

Each says :class:`~fakeblock.common.wire.Ready` on connecting and every
``READY_INTERVAL_S`` (also while the worker waits for room downstream: the runtime calls
:meth:`FrameReaders.say_ready` at every poll), so the capture keeps leasing its stream
here (``capture/leases.py``).  The message names this worker (stage/worker, host and pid,
for the capture's log), how many streams it holds (the captures whose frames came within
the lease timeout), whether it tracks, and whether it is a spare for that capture (with
tracking, a worker also reads the captures whose streams its site gives to other
workers, so that one of them takes over a stream whose holder falls silent).
"""

from __future__ import annotations

import os
import socket as system_socket
import time
from collections.abc import Callable

import zmq

from fakeblock.common import wire
from fakeblock.common.runtime import LEASE_TIMEOUT_S, READY_INTERVAL_S, StageRuntime


class FrameReaders:
    """The DEALER sockets of one detect worker, and its ready messages."""

    def __init__(self, runtime: StageRuntime, sources: tuple[str, ...], hwm: int, tracking: bool,
                 clock: Callable[[], float] = time.monotonic, spares: tuple[str, ...] = ()):
        self.runtime, self.tracking, self.clock = runtime, tracking, clock
        self.sockets = [runtime.socket(zmq.DEALER, hwm, connect_to=endpoint) for endpoint in (*sources, *spares)]
        self._spare = {socket: index >= len(sources) for index, socket in enumerate(self.sockets)}
        name = f"{runtime.name}@{system_socket.gethostname()}:{os.getpid()}"
        self.name = name[-wire.MAX_STREAM_NAME_CHARS:]
        self._frame_s = {socket: -float("inf") for socket in self.sockets}
        self._next_ready_s = 0.0
        runtime.periodic.append(self.say_ready)
        self.say_ready()  # queued until each connection is made

    def say_ready(self) -> None:
        """Tell every capture this worker is ready, once every ``READY_INTERVAL_S`` (never blocks)."""
        now_s = self.clock()
        if now_s < self._next_ready_s:
            return
        self._next_ready_s = now_s + READY_INTERVAL_S
        load = sum(1 for frame_s in self._frame_s.values() if now_s - frame_s <= LEASE_TIMEOUT_S)
        messages = {spare: wire.encode(wire.Ready(self.name, load, self.tracking, spare)) for spare in (False, True)}
        for socket in self.sockets:
            try:
                socket.send_multipart(messages[self._spare[socket]], flags=zmq.NOBLOCK)
            except zmq.Again:  # not connected yet, or the capture is not reading: the next one will do
                pass

    def receive(self, socket: zmq.Socket) -> wire.Frame | None:
        """One frame from ``socket``, or None (nothing waiting, malformed or another kind: counted)."""
        message = self.runtime.receive(socket, expect=wire.Frame)
        if message is not None:
            self._frame_s[socket] = self.clock()
        return message

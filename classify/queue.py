"""The faces queue: the stable middle between N detect workers and M classify workers.

Both sides scale, so neither may bind; this small process binds both ends and forwards
whole messages without copying them.  It checks each one first (at most two parts and
``wire.MAX_MESSAGE_BYTES``, read part by part; a valid ``Faces``): anything else is
dropped and counted, so no classify worker spends memory on it.  PUSH blocks when every
classify worker is full, which carries a lossless replay's backpressure up to detect.
"""

from __future__ import annotations

import zmq

from fakeblock.common import wire
from fakeblock.common.counters import DROPPED, FRAMES_IN, FRAMES_OUT, UNEXPECTED
from fakeblock.common.endpoints import Endpoints
from fakeblock.common.runtime import StageRuntime, receive_parts
from fakeblock.common.security.access import SecurityConfig

QUEUE_HWM = 64
FORWARD_BURST = 256


def run_queue(_config: None, endpoints: Endpoints, worker: int = 0, security: SecurityConfig | None = None) -> int:
    """Forward faces from ``faces_in`` to ``faces_out`` until told to stop."""
    runtime = StageRuntime("queue", worker, endpoints, security)
    incoming = runtime.socket(zmq.PULL, QUEUE_HWM, bind_to=endpoints.faces_in)
    outgoing = runtime.socket(zmq.PUSH, QUEUE_HWM, bind_to=endpoints.faces_out)
    try:
        while not runtime.stop_requested:
            if incoming in runtime.poll([incoming]):
                _forward_burst(runtime, incoming, outgoing)
    finally:
        runtime.close()
    return 0


def _forward_burst(runtime: StageRuntime, incoming: zmq.Socket, outgoing: zmq.Socket) -> None:
    """Pass on what is waiting (up to ``FORWARD_BURST`` messages), never past a stop order."""
    for _ in range(FORWARD_BURST):
        if runtime.stop_requested:
            return
        try:
            frames = receive_parts(incoming)
            # Checked before it goes on, so classify never spends memory on a bad message.
            if not isinstance(wire.decode(frames), wire.Faces):
                runtime.count(UNEXPECTED)
                continue
        except zmq.Again:
            return
        except ValueError as error:
            runtime.drop_malformed(error)
            continue
        runtime.count(FRAMES_IN)
        if not runtime.forward(outgoing, frames):
            runtime.count(DROPPED)  # a stop came while classify had no room
            return
        runtime.count(FRAMES_OUT)

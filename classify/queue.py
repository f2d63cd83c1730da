"""The faces queue: the stable middle between N detect workers and M classify workers.

Both sides scale, so neither may bind; this small process binds both ends and forwards
whole messages without decoding them (classify validates).  PUSH blocks when every
classify worker is full, which carries a lossless replay's backpressure up to detect.
"""

from __future__ import annotations

import zmq

from fakeblock.common.endpoints import Endpoints
from fakeblock.common.runtime import StageRuntime
from fakeblock.common.security import SecurityConfig

QUEUE_HWM = 64
FORWARD_BURST = 256


def run_queue(_config: None, endpoints: Endpoints, worker: int = 0, security: SecurityConfig | None = None) -> int:
    """Forward faces from ``faces_in`` to ``faces_out`` until told to stop."""
    runtime = StageRuntime("queue", worker, endpoints, security)
    incoming = runtime.socket(zmq.PULL, QUEUE_HWM, bind_to=endpoints.faces_in)
    outgoing = runtime.socket(zmq.PUSH, QUEUE_HWM, bind_to=endpoints.faces_out)
    try:
        while not runtime.stop_requested:
            if incoming not in runtime.poll([incoming]):
                continue
            for _ in range(FORWARD_BURST):
                try:
                    frames = incoming.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                runtime.count("frames_in")
                if not _forward(runtime, outgoing, frames):
                    break
    finally:
        runtime.close()
    return 0


def _forward(runtime: StageRuntime, outgoing: zmq.Socket, frames: list) -> bool:
    """Send on, waiting for room but never past a stop order."""
    while not runtime.stop_requested:
        try:
            outgoing.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
            runtime.count("frames_out")
            return True
        except zmq.Again:
            if outgoing.poll(100, zmq.POLLOUT) == 0:
                runtime.poll([], 0)
    runtime.count("dropped")
    return False

"""A throwaway stage for the registry test: faces pass through it between detect and the queue.

It is what a new stage's ``stage.py`` would be: a loop on :class:`StageRuntime` that binds
its own link, checks every message with the wire decoder and sends it on.
"""

from __future__ import annotations

import zmq

from fakeblock.common import wire
from fakeblock.common.endpoints import Endpoints
from fakeblock.common.runtime import StageRuntime
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.stages import StageSpec

TAPPED_FACES_LINK = "tapped_faces"
FACES_HWM = 64
PASSTHROUGH = StageSpec("passthrough", "tests.passthrough_stage:run_passthrough", binds=(TAPPED_FACES_LINK,),
                        links=(TAPPED_FACES_LINK,))


def run_passthrough(_config: None, endpoints: Endpoints, worker: int = 0,
                    security: SecurityConfig | None = None) -> int:
    """Forward every ``Faces`` from the tapped link to the queue until told to stop."""
    runtime = StageRuntime(PASSTHROUGH.name, worker, endpoints, security)
    incoming = runtime.socket(zmq.PULL, FACES_HWM, bind_to=endpoints.link(TAPPED_FACES_LINK))
    outgoing = runtime.socket(zmq.PUSH, FACES_HWM, connect_to=endpoints.faces_in)
    try:
        while not runtime.stop_requested:
            if incoming not in runtime.poll([incoming]):
                continue
            message = runtime.receive(incoming, expect=wire.Faces)
            if message is not None and runtime.send(outgoing, message):
                runtime.count("frames_out")
    finally:
        runtime.close()
    return 0

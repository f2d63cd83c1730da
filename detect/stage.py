"""The detect stage: frames in, face boxes and 48x48 crops out (one message per frame).

With tracking (the default) each stream's frames must all reach one worker, in order,
since its tracks live there: worker ``w`` of the site's ``n`` (numbered across hosts)
connects only to the captures numbered ``w``, ``w + n``, ...  With one stream the other
workers idle; with several, the workers share the streams.  Replicas that share a number
(several supervisors under one host name: ``docker compose --scale``, a Deployment's
replicas) all connect, and each capture leases its stream to one of them
(``detect/readers.py``, ``capture/leases.py``).  Without tracking every worker connects
to every capture and takes frames in turn.
"""

from __future__ import annotations

import logging

import cv2
import zmq

from fakeblock.common import wire
from fakeblock.common.config import DetectConfig, detect_threads
from fakeblock.common.counters import FACES, FRAMES_OUT, HURRIED, STALE
from fakeblock.common.endpoints import Endpoints
from fakeblock.common.runtime import StageRuntime
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.wording import plural
from fakeblock.detect.core import StreamTrackers, cascade_finder, detect, load_cascade
from fakeblock.detect.readers import FrameReaders

LOGGER = logging.getLogger(__name__)
# Frames are large: keep at most a couple queued per worker so a live source's drops
# happen at capture (counted) rather than as latency here.
FRAMES_HWM = 2
# Faces messages are small; PUSH blocks when the queue is full, which is the
# backpressure lossless replays rely on.
FACES_HWM = 64


def frame_sources(config: DetectConfig, endpoints: Endpoints, worker: int) -> tuple[str, ...]:
    """The capture endpoints this worker reads: all of them, or with tracking its share."""
    every = endpoints.all_frames()
    if not config.tracking:
        return every
    site_worker = config.first_worker + worker
    return tuple(endpoint for number, endpoint in enumerate(every)
                 if number % max(1, config.worker_count) == site_worker)


def spare_sources(config: DetectConfig, endpoints: Endpoints, worker: int) -> tuple[str, ...]:
    """With tracking, the captures whose streams other workers hold: this one stands by as their spare.

    It says so in its ready messages, so a capture leases it its stream only when the
    worker meant for it is silent or gone (``capture/leases.py``).
    """
    if not config.tracking:
        return ()
    own = frame_sources(config, endpoints, worker)
    return tuple(endpoint for endpoint in endpoints.all_frames() if endpoint not in own)


def run_detect(config: DetectConfig, endpoints: Endpoints, worker: int = 0,
               security: SecurityConfig | None = None) -> int:
    """Receive frames, find faces, send every frame's faces (even none) to the classify queue."""
    threads = detect_threads(config, workers_here=1)
    # With tracking a frame's many small scans run on threads of the stage's own, each with
    # its own cascade; OpenCV's pool inside each call would only add overhead (about 6 % more
    # CPU on 720p).
    cv2.setNumThreads(1 if config.tracking else threads)
    cascade = load_cascade()
    trackers = StreamTrackers(config, cascade_finder([cascade] + [load_cascade() for _ in range(threads - 1)],
                                                     config)) if config.tracking else None
    sources, spares = frame_sources(config, endpoints, worker), spare_sources(config, endpoints, worker)
    if not sources:
        LOGGER.info("no stream of its own (%s, %s); a spare for the others",
                    plural(len(endpoints.all_frames()), "stream"), plural(config.worker_count, "worker"))
    runtime = StageRuntime("detect", worker, endpoints, security)
    readers = FrameReaders(runtime, sources, FRAMES_HWM, config.tracking, spares=spares)
    faces = runtime.socket(zmq.PUSH, FACES_HWM, connect_to=endpoints.faces_in)
    try:
        while not runtime.stop_requested:
            for frames in runtime.poll(readers.sockets):
                message = readers.receive(frames)
                if message is None:
                    continue
                _detect_and_send(runtime, message, frames, faces, trackers, cascade, config)
    finally:
        runtime.close()
    return 0


def _detect_and_send(runtime: StageRuntime, message: wire.Frame, frames: zmq.Socket, faces: zmq.Socket,
                     trackers: StreamTrackers | None, cascade: cv2.CascadeClassifier, config: DetectConfig) -> None:
    """Find one frame's faces (tracked, or by a full scan) and send them on; a stale frame is dropped."""
    if trackers is None:
        boxes, crops = detect(message.pixels, cascade, config, wire.MAX_FACES_PER_FRAME)
        tracks: list[int] = []
    else:
        # Live and another frame already waiting: this one gets only its tracks looked for.
        hurry = message.live and bool(frames.poll(0, zmq.POLLIN))
        runtime.count(HURRIED, hurry)
        found = trackers.detect(message.info.stream, message.info.frame_number, message.pixels,
                                wire.MAX_FACES_PER_FRAME, hurry, message.info.epoch, message.live)
        if found is None:  # sent again after a crash: its turn comes from the stream's start
            runtime.count(STALE)
            return
        boxes, tracks, crops = found
    runtime.count(FACES, len(boxes))
    if runtime.send(faces, wire.Faces(message.info, tuple(boxes), crops, tuple(tracks))):
        runtime.count(FRAMES_OUT)

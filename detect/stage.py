"""The detect stage: frames in, face boxes and 48x48 crops out (one message per frame)."""

from __future__ import annotations

import logging

import cv2
import zmq

from fakeblock.common import wire
from fakeblock.common.config import DetectConfig, detect_threads
from fakeblock.common.endpoints import Endpoints
from fakeblock.common.runtime import StageRuntime
from fakeblock.detect.core import detect, load_cascade

LOGGER = logging.getLogger(__name__)
# Frames are large: keep at most a couple queued per worker so a live source's drops
# happen at capture (counted) rather than as latency here.
FRAMES_HWM = 2
# Faces messages are small; PUSH blocks when the queue is full, which is the
# backpressure lossless replays rely on.
FACES_HWM = 64


def run_detect(config: DetectConfig, endpoints: Endpoints, worker: int = 0) -> int:
    """Receive frames, find faces, send every frame's faces (even none) to the classify queue."""
    cv2.setNumThreads(detect_threads(config, workers_here=1))
    cascade = load_cascade()
    runtime = StageRuntime("detect", worker, endpoints)
    frames = runtime.socket(zmq.PULL, FRAMES_HWM, connect_to=endpoints.all_frames())
    faces = runtime.socket(zmq.PUSH, FACES_HWM, connect_to=endpoints.faces_in)
    try:
        while not runtime.stop_requested:
            if frames not in runtime.poll([frames]):
                continue
            message = runtime.receive(frames, expect=wire.Frame)
            if message is None:
                continue
            boxes, crops = detect(message.pixels, cascade, config, wire.MAX_FACES_PER_FRAME)
            runtime.count("faces", len(boxes))
            if runtime.send(faces, wire.Faces(message.info, tuple(boxes), crops)):
                runtime.count("frames_out")
    finally:
        runtime.close()
    return 0

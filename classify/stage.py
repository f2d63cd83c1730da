"""The classify stage: batches of faces from all detect workers through the emotion model."""

from __future__ import annotations

import logging
import time

import zmq

from fakeblock.classify.core import (
    Pending,
    batch_due_in_s,
    empty_result,
    face_count,
    split_results,
    stack_crops,
    take_batch,
)
from fakeblock.classify.model_runtime import EmotionModel
from fakeblock.common import wire
from fakeblock.common.config import ClassifyConfig
from fakeblock.common.counters import BATCH_SIZE, BATCHES, FACES, FRAMES_OUT, PENDING
from fakeblock.common.endpoints import Endpoints
from fakeblock.common.runtime import POLL_INTERVAL_MS, StageRuntime
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.sockets import RESULTS_HWM

LOGGER = logging.getLogger(__name__)
# Faces messages are small; a deep queue lets batches fill.
FACES_HWM = 256


def run_classify(config: ClassifyConfig, endpoints: Endpoints, worker: int = 0,
                 security: SecurityConfig | None = None) -> int:
    """Receive faces, run the model once per batch, send one Result per frame."""
    model = EmotionModel(config.model, threads=config.threads)
    runtime = StageRuntime("classify", worker, endpoints, security)
    faces = runtime.socket(zmq.PULL, FACES_HWM, connect_to=endpoints.faces_out)
    results = runtime.socket(zmq.PUSH, RESULTS_HWM, connect_to=endpoints.results)
    pending: list[Pending] = []
    try:
        while not runtime.stop_requested:
            due_s = batch_due_in_s(pending, time.monotonic(), config.max_batch_size, config.batch_timeout_ms)
            timeout_ms = POLL_INTERVAL_MS if due_s is None else min(POLL_INTERVAL_MS, int(due_s * 1000))
            if faces in runtime.poll([faces], timeout_ms):
                _drain(runtime, faces, results, pending, config.max_batch_size)
            due_s = batch_due_in_s(pending, time.monotonic(), config.max_batch_size, config.batch_timeout_ms)
            if due_s == 0.0:
                batch, pending = take_batch(pending, config.max_batch_size)
                _classify(runtime, model, batch, results)
            runtime.counters[PENDING] = len(pending)  # frames whose faces wait for a batch
    finally:
        runtime.close()
    return 0


def _drain(runtime: StageRuntime, faces: zmq.Socket, results: zmq.Socket, pending: list[Pending],
           max_batch_size: int) -> None:
    """Take every waiting message (up to a batch's worth of faces); empty frames pass straight on."""
    while face_count(pending) < max_batch_size:
        message = runtime.receive(faces, expect=wire.Faces)
        if message is None:  # nothing waiting, or a message dropped: the next poll resumes
            return
        if message.boxes:
            pending.append(Pending(message, time.monotonic()))
        elif runtime.send(results, empty_result(message)):
            runtime.count(FRAMES_OUT)


def _classify(runtime: StageRuntime, model: EmotionModel, batch: list[Pending], results: zmq.Socket) -> None:
    crops = stack_crops(batch)
    scores = model.scores(crops)
    runtime.count(BATCHES)
    runtime.count(FACES, len(crops))
    runtime.counters[BATCH_SIZE] = len(crops)
    for result in split_results(batch, scores):
        if runtime.send(results, result):
            runtime.count(FRAMES_OUT)

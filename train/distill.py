"""Knowledge distillation: train against a blend of the labels and trained teachers' scores.

A small network learns more from a teacher's full score vector ("this fear looks a bit
like surprise") than from one hard label, and FER2013's labels are noisy. Teachers are
scored once, before training, on the unaugmented training faces through the classify
runtime (so ``.tflite`` and ``.keras`` teachers both work), each averaged with its mirror
image; several teachers are averaged into one ensemble. Each teacher's scores are cached
beside the parsed datasets, keyed by the model file's and the faces' content, so a
resumed or repeated run does not score 28,709 faces again.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fakeblock.classify.model_runtime import EmotionModel
from fakeblock.common.model_io import EMOTIONS
from fakeblock.train.data_cache import cache_directory, file_fingerprint
from fakeblock.train.evaluate import predict_scores

LOGGER = logging.getLogger(__name__)
SCORES_CACHE_VERSION = 1


def teacher_scores(teachers: Sequence[EmotionModel], faces: np.ndarray) -> np.ndarray:
    """The mean flip-averaged emotion scores ``(N, 7)`` of every teacher on ``faces``."""
    faces_digest = hashlib.sha256(np.ascontiguousarray(faces).tobytes()).hexdigest()
    scores = []
    for number, model in enumerate(teachers, start=1):
        cache_path = _scores_cache_path(model, faces_digest)
        cached = _read_scores(cache_path, len(faces))
        if cached is not None:
            LOGGER.info("teacher %d of %d: scores of %d faces read from the cache %s",
                        number, len(teachers), len(faces), cache_path)
            scores.append(cached)
            continue
        LOGGER.info("scoring %d training faces with teacher %d of %d", len(faces), number, len(teachers))
        scores.append(predict_scores(model, faces, tta=True))
        _write_scores(cache_path, scores[-1])
    return np.mean(scores, axis=0).astype(np.float32)


def _scores_cache_path(model: EmotionModel, faces_digest: str) -> Path | None:
    """Where ``model``'s flip-averaged scores of these faces are cached; None for an in-memory model."""
    path = getattr(model, "path", None)
    if path is None:
        return None
    key = hashlib.sha256(f"{file_fingerprint([Path(path)])}|{faces_digest}|v{SCORES_CACHE_VERSION}".encode())
    return cache_directory() / "teacher-scores" / f"{key.hexdigest()}.npy"


def _read_scores(path: Path | None, count: int) -> np.ndarray | None:
    if path is None or not path.exists():
        return None
    try:
        scores = np.load(path)
    except (OSError, ValueError, EOFError) as error:
        LOGGER.warning("ignoring unreadable cached teacher scores %s: %s", path, error)
        return None
    return scores if scores.shape == (count, len(EMOTIONS)) else None


def _write_scores(path: Path | None, scores: np.ndarray) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.npy")
        np.save(temporary, scores)
        os.replace(temporary, path)
    except OSError as error:
        LOGGER.warning("could not cache teacher scores in %s: %s", path.parent, error)


def blend_targets(targets: np.ndarray, scores: np.ndarray, teacher_weight: float) -> np.ndarray:
    """``(1 - w) * targets + w * scores``, renormalised so every row sums to one."""
    if not 0.0 <= teacher_weight <= 1.0:
        raise ValueError(f"teacher weight {teacher_weight} is not between 0 and 1")
    blended = (1.0 - teacher_weight) * targets + teacher_weight * scores
    return (blended / blended.sum(axis=1, keepdims=True)).astype(np.float32)

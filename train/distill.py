"""Knowledge distillation: train against a blend of the labels and trained teachers' scores.

A small network learns more from a teacher's full score vector ("this fear looks a bit
like surprise") than from one hard label, and FER2013's labels are noisy. Teachers are
scored once, before training, on the unaugmented training faces through the classify
runtime (so ``.tflite`` and ``.keras`` teachers both work), each averaged with its mirror
image; several teachers are averaged into one ensemble.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from fakeblock.classify.runtime import EmotionModel
from fakeblock.train.evaluate import predict_scores

LOGGER = logging.getLogger(__name__)


def teacher_scores(teachers: Sequence[EmotionModel], faces: np.ndarray) -> np.ndarray:
    """The mean flip-averaged emotion scores ``(N, 7)`` of every teacher on ``faces``."""
    scores = []
    for number, model in enumerate(teachers, start=1):
        LOGGER.info("scoring %d training faces with teacher %d of %d", len(faces), number, len(teachers))
        scores.append(predict_scores(model, faces, tta=True))
    return np.mean(scores, axis=0).astype(np.float32)


def blend_targets(targets: np.ndarray, scores: np.ndarray, teacher_weight: float) -> np.ndarray:
    """``(1 - w) * targets + w * scores``, renormalised so every row sums to one."""
    if not 0.0 <= teacher_weight <= 1.0:
        raise ValueError(f"teacher weight {teacher_weight} is not between 0 and 1")
    blended = (1.0 - teacher_weight) * targets + teacher_weight * scores
    return (blended / blended.sum(axis=1, keepdims=True)).astype(np.float32)

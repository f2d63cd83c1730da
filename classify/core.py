"""Batching and result assembly for the classify stage, as pure functions (no TensorFlow).

Faces from every detect worker queue up as whole per-frame messages; a batch goes when
it holds ``max_batch_size`` faces or its oldest message has waited ``batch_timeout_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fakeblock.common import wire


@dataclass(frozen=True)
class Pending:
    """One frame's faces waiting for a batch, with its arrival time (monotonic seconds)."""

    faces: wire.Faces
    arrived_s: float


def face_count(pending: list[Pending]) -> int:
    """Faces waiting in total."""
    return sum(len(item.faces.boxes) for item in pending)


def batch_due_in_s(pending: list[Pending], now_s: float, max_batch_size: int, batch_timeout_ms: float) -> float | None:
    """Seconds until a batch must go: 0 when due now, None when nothing waits."""
    if not pending:
        return None
    if face_count(pending) >= max_batch_size:
        return 0.0
    return max(0.0, pending[0].arrived_s + batch_timeout_ms / 1000.0 - now_s)


def take_batch(pending: list[Pending], max_batch_size: int) -> tuple[list[Pending], list[Pending]]:
    """Split off the oldest whole messages holding at most ``max_batch_size`` faces (at least one message)."""
    taken: list[Pending] = []
    total = 0
    for item in pending:
        size = len(item.faces.boxes)
        if taken and total + size > max_batch_size:
            break
        taken.append(item)
        total += size
    return taken, pending[len(taken):]


def stack_crops(batch: list[Pending]) -> np.ndarray:
    """All crops of a batch as one ``(N, 48, 48)`` array, in message order."""
    return np.concatenate([item.faces.crops for item in batch])


def split_results(batch: list[Pending], scores: np.ndarray) -> list[wire.Result]:
    """One Result per message, giving each its own rows of ``scores``."""
    expected = face_count(batch)
    if len(scores) != expected:
        raise ValueError(f"model returned {len(scores)} score rows for {expected} faces")
    results, start = [], 0
    for item in batch:
        end = start + len(item.faces.boxes)
        rows = tuple(tuple(float(value) for value in row) for row in scores[start:end])
        results.append(wire.Result(item.faces.info, item.faces.boxes, rows, item.faces.tracks))
        start = end
    return results


def empty_result(faces: wire.Faces) -> wire.Result:
    """The result of a frame with no faces: passes through without touching the model."""
    return wire.Result(faces.info, (), ())

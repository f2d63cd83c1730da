"""The batcher and result assembly, without TensorFlow or sockets."""

from __future__ import annotations

import numpy as np
import pytest

from fakeblock.classify.core import (
    Pending,
    batch_due_in_s,
    empty_result,
    face_count,
    split_results,
    stack_crops,
    take_batch,
)
from fakeblock.common import wire


def faces(frame_number: int, count: int) -> wire.Faces:
    info = wire.FrameInfo("s", frame_number, frame_number / 30, 100.0 + frame_number)
    boxes = tuple((10 * i, 0, 40, 40) for i in range(count))
    crops = np.full((count, 48, 48), frame_number, np.uint8)
    return wire.Faces(info, boxes, crops)


def pending(counts, arrived_s=0.0):
    return [Pending(faces(index, count), arrived_s + index * 0.001) for index, count in enumerate(counts)]


def test_nothing_waiting_means_no_deadline():
    assert batch_due_in_s([], 5.0, 32, 10) is None


def test_a_full_batch_is_due_at_once():
    assert batch_due_in_s(pending([16, 16]), 0.0, 32, 10) == 0.0


def test_a_partial_batch_waits_for_the_oldest_face_timeout():
    waiting = pending([3], arrived_s=1.0)
    assert batch_due_in_s(waiting, 1.004, 32, 10) == pytest.approx(0.006)
    assert batch_due_in_s(waiting, 1.050, 32, 10) == 0.0


def test_take_batch_keeps_whole_frames_and_respects_the_limit():
    taken, rest = take_batch(pending([10, 10, 10, 10]), 32)
    assert [len(item.faces.boxes) for item in taken] == [10, 10, 10]
    assert [item.faces.info.frame_number for item in rest] == [3]


def test_take_batch_always_takes_at_least_one_frame_even_if_larger_than_the_limit():
    taken, rest = take_batch(pending([40, 2]), 32)
    assert face_count(taken) == 40 and face_count(rest) == 2


def test_scores_go_back_to_their_own_frames_in_order():
    batch = pending([2, 1, 3])
    crops = stack_crops(batch)
    assert crops.shape == (6, 48, 48)
    scores = np.eye(7, dtype=np.float32)[[0, 0, 1, 2, 2, 2]]
    results = split_results(batch, scores)
    assert [r.info.frame_number for r in results] == [0, 1, 2]
    assert [len(r.scores) for r in results] == [2, 1, 3]
    assert results[1].scores[0][1] == 1.0 and results[2].boxes == batch[2].faces.boxes


def test_prediction_count_mismatch_is_an_error_not_a_silent_shift():
    with pytest.raises(ValueError, match="score rows"):
        split_results(pending([2, 2]), np.zeros((3, 7), np.float32))


def test_a_frame_without_faces_becomes_an_empty_result():
    result = empty_result(faces(4, 0))
    assert result.info.frame_number == 4 and result.boxes == () and result.scores == ()

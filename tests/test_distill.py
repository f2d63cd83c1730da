"""``fakeblock train --teacher``: training targets blended with trained teachers' scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakeblock.common.preprocess import EMOTIONS
from fakeblock.train import data
from fakeblock.train.augment import one_hot
from fakeblock.train.distill import blend_targets
from tests.test_train import LeftOrRightModel, assert_user_error
from tests.training_data import train

# cache_in_tmp (tests/conftest.py): every test gets its own model cache.
pytestmark = [pytest.mark.train, pytest.mark.timeout(300), pytest.mark.usefixtures("cache_in_tmp")]


class NeutralModel:
    """Scores every face as 'neutral'."""

    def scores(self, faces: np.ndarray) -> np.ndarray:
        scores = np.zeros((len(faces), len(EMOTIONS)), np.float32)
        scores[:, EMOTIONS.index("neutral")] = 1.0
        return scores


def test_blend_takes_the_teacher_share_and_keeps_rows_summing_to_one():
    targets = one_hot(np.array([0, 3]), len(EMOTIONS))
    scores = np.full((2, len(EMOTIONS)), 1 / len(EMOTIONS), np.float32)
    np.testing.assert_allclose(blend_targets(targets, scores, 0.0), targets)
    np.testing.assert_allclose(blend_targets(targets, scores, 1.0), scores, rtol=1e-6)
    quarter = blend_targets(targets, scores, 0.25)
    np.testing.assert_allclose(quarter[0, 0], 0.75 + 0.25 / 7, rtol=1e-6)
    np.testing.assert_allclose(quarter.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError):
        blend_targets(targets, scores, 1.5)


def test_training_targets_blend_labels_with_the_mean_of_flip_averaged_teachers(layouts):
    from fakeblock.train.run import TrainConfig, _training_rows

    data_path = layouts["csv"][0]
    dataset = data.load_dataset(data_path)
    config = TrainConfig(data=str(data_path), teachers=("left-or-right", "neutral"), teacher_weight=0.4)
    faces, labels, targets = _training_rows(config, dataset, [LeftOrRightModel(), NeutralModel()])
    left_or_right = (LeftOrRightModel().scores(faces) + LeftOrRightModel().scores(faces[:, :, ::-1])) / 2
    teachers = (left_or_right + NeutralModel().scores(faces)) / 2
    np.testing.assert_allclose(targets, 0.6 * one_hot(labels, len(EMOTIONS)) + 0.4 * teachers, rtol=1e-6)


def test_train_with_a_teacher_records_it_on_the_card(csv_model, layouts, tmp_path):
    teacher = csv_model / "emotion.tflite"
    result = train(layouts["csv"][0], tmp_path / "student", "--teacher", teacher, "--teacher-weight", "0.7")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "student" / "model.json").read_text())["config"]
    assert (config["teachers"], config["teacher_weight"]) == ([str(teacher)], 0.7)


def test_a_missing_teacher_is_one_clear_line_before_any_training(layouts, tmp_path):
    result = train(layouts["csv"][0], tmp_path / "student", "--teacher", tmp_path / "nope.tflite")
    assert_user_error(result, "nope.tflite", "not found")
    assert not (tmp_path / "student" / "history.csv").exists()


class CountingTeacher(LeftOrRightModel):
    """A teacher stored in a file, that counts how often it is asked to score."""

    def __init__(self, path):
        self.path, self.calls = path, 0

    def scores(self, faces: np.ndarray) -> np.ndarray:
        self.calls += 1
        return super().scores(faces)


def test_teacher_scores_are_cached_by_model_file_and_faces(tmp_path):
    from fakeblock.train.distill import teacher_scores

    model_file = tmp_path / "teacher.tflite"
    model_file.write_bytes(b"first version")
    faces = np.random.default_rng(0).integers(0, 256, (20, 48, 48), dtype=np.uint8)
    teacher = CountingTeacher(model_file)
    first = teacher_scores([teacher], faces)
    assert teacher.calls > 0
    calls = teacher.calls
    np.testing.assert_array_equal(teacher_scores([teacher], faces), first)
    assert teacher.calls == calls, "a second run scored the same faces again"
    teacher_scores([teacher], faces[:10])
    assert teacher.calls > calls, "other faces were answered from the cache"
    calls = teacher.calls
    model_file.write_bytes(b"retrained version")
    teacher_scores([teacher], faces)
    assert teacher.calls > calls, "a changed teacher file was answered from the cache"

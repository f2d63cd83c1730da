"""Training augmentation: random erasing hides one rectangle per chosen face, repeatably."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from fakeblock.train.augment import ERASE_AREA_FRACTION, erase_random_rectangles, make_tf_dataset  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.timeout(120)]
GREY = 0.5


def grey_faces(count: int) -> tf.Tensor:
    return tf.fill([count, 48, 48, 1], GREY)


def changed_pixels(faces: np.ndarray) -> np.ndarray:
    """``(n, 48, 48)`` booleans: where a face is no longer plain grey."""
    return faces[..., 0] != GREY


def test_every_chosen_face_gets_one_filled_rectangle_of_the_set_size():
    erased = changed_pixels(erase_random_rectangles(grey_faces(300), tf.constant([3, 4]), 1.0).numpy())
    low, high = ERASE_AREA_FRACTION
    for mask in erased:
        rows, columns = np.nonzero(mask)
        assert len(rows), "a face chosen with probability 1 was left untouched"
        box = mask[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
        assert box.all(), "the erased pixels do not form one solid rectangle"
        assert low * 0.9 <= mask.mean() <= high * 1.15
    areas = erased.reshape(len(erased), -1).mean(axis=1)
    assert areas.max() - areas.min() > (high - low) / 2, "rectangle sizes do not vary"


def test_the_probability_sets_the_share_of_erased_faces_and_zero_erases_nothing():
    faces = grey_faces(1000)
    share = changed_pixels(erase_random_rectangles(faces, tf.constant([5, 6]), 0.3).numpy()).any(axis=(1, 2)).mean()
    assert 0.24 <= share <= 0.36
    assert not changed_pixels(erase_random_rectangles(faces, tf.constant([5, 6]), 0.0).numpy()).any()


def test_the_same_seed_erases_the_same_rectangles_and_another_seed_does_not():
    faces = grey_faces(50)
    first = erase_random_rectangles(faces, tf.constant([1, 2]), 1.0).numpy()
    again = erase_random_rectangles(faces, tf.constant([1, 2]), 1.0).numpy()
    other = erase_random_rectangles(faces, tf.constant([2, 1]), 1.0).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(changed_pixels(first), changed_pixels(other))


def plain_batches(training: bool, erase_probability: float) -> np.ndarray:
    """Every face of one pass over 40 uniform faces, through the training input pipeline."""
    faces = np.full((40, 48, 48), 128, np.uint8)
    targets = np.eye(7, dtype=np.float32)[np.zeros(40, int)]
    dataset = make_tf_dataset(faces, targets, 16, training, erase_probability=erase_probability)
    return np.concatenate([batch[0].numpy() for batch in dataset])


def test_training_batches_are_erased_and_validation_batches_never_are():
    def noisy_faces(batch: np.ndarray) -> int:
        # Flips, shifts and contrast leave a uniform face uniform; only erasing adds texture.
        return int((batch.reshape(len(batch), -1).std(axis=1) > 0.01).sum())

    assert noisy_faces(plain_batches(True, 1.0)) == 40
    assert noisy_faces(plain_batches(True, 0.0)) == 0
    assert noisy_faces(plain_batches(False, 1.0)) == 0

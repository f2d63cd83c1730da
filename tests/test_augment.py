"""Training augmentation: random erasing hides one rectangle per chosen face, repeatably."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from fakeblock.train.augment import (  # noqa: E402
    ERASE_AREA_FRACTION,
    erase_random_rectangles,
    evaluation_batches,
    steps_per_epoch,
    training_batches,
)

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
    """Every face of one pass over 40 uniform faces, through the training or validation input."""
    faces = np.full((40, 48, 48), 128, np.uint8)
    targets = np.eye(7, dtype=np.float32)[np.zeros(40, int)]
    if training:
        dataset = training_batches(faces, targets, 16, erase_probability=erase_probability)
        dataset = dataset.take(steps_per_epoch(40, 16))
    else:
        dataset = evaluation_batches(faces, targets, 16)
    return np.concatenate([batch[0].numpy() for batch in dataset])


def test_training_batches_are_erased_and_validation_batches_never_are():
    def noisy_faces(batch: np.ndarray) -> int:
        # Flips, shifts and contrast leave a uniform face uniform; only erasing adds texture.
        return int((batch.reshape(len(batch), -1).std(axis=1) > 0.01).sum())

    assert noisy_faces(plain_batches(True, 1.0)) == 40
    assert noisy_faces(plain_batches(True, 0.0)) == 0
    assert noisy_faces(plain_batches(False, 1.0)) == 0


def epochs_of_batches(first_epoch: int, epochs: int) -> list[np.ndarray]:
    """Faces and targets of each epoch from ``first_epoch`` on: 50 distinct faces in batches of 16."""
    generator = np.random.default_rng(4)
    faces = generator.integers(0, 256, (50, 48, 48), dtype=np.uint8)
    targets = np.eye(7, dtype=np.float32)[np.arange(50) % 7]
    steps = steps_per_epoch(50, 16)
    batches = list(training_batches(faces, targets, 16, seed=9, first_epoch=first_epoch,
                                    erase_probability=0.5).take(steps * epochs))
    return [np.concatenate([batch[index].numpy() for batch in batches[epoch * steps:(epoch + 1) * steps]])
            for epoch in range(epochs) for index in (0, 1)]


def test_an_epoch_holds_the_same_batches_whether_the_run_started_there_or_earlier():
    # What makes --resume exact: epoch 2 of a run from 0 and epoch 2 of a run resumed at 2.
    from_start, resumed = epochs_of_batches(0, 3), epochs_of_batches(2, 1)
    np.testing.assert_array_equal(from_start[4], resumed[0])
    np.testing.assert_array_equal(from_start[5], resumed[1])
    assert not np.array_equal(from_start[0], from_start[4]), "two epochs got the same augmentation"
    first_targets, later_targets = from_start[1], from_start[5]
    assert sorted(first_targets.argmax(axis=1)) == sorted(later_targets.argmax(axis=1)), "an epoch is not one pass"
    assert not np.array_equal(first_targets, later_targets), "two epochs visit the faces in the same order"

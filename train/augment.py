"""Training-time augmentation and the ``tf.data`` input pipeline."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import keras
from keras import layers

from fakeblock.common.preprocess import normalise_faces

SHUFFLE_BUFFER = 8192


def make_augmenter(seed: int) -> keras.Sequential:
    """Flips, small shifts, rotations, zooms and contrast changes, then random erasing."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
            layers.RandomRotation(0.05, fill_mode="reflect", seed=seed + 2),
            layers.RandomZoom((-0.15, 0.1), fill_mode="reflect", seed=seed + 3),
            layers.RandomContrast(0.2, seed=seed + 4),
            layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=seed + 5),
        ],
        name="augment",
    )


def make_tf_dataset(faces: np.ndarray, targets: np.ndarray, batch_size: int, training: bool,
                    seed: int = 1337, sample_weights: np.ndarray | None = None) -> tf.data.Dataset:
    """Batches of normalised faces, one-hot (or soft) targets and optional per-face weights.

    Augmented when ``training``.
    """
    inputs = normalise_faces(faces)
    columns = (inputs, targets.astype(np.float32))
    if sample_weights is not None:
        columns += (sample_weights.astype(np.float32),)
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if training:
        dataset = dataset.shuffle(min(SHUFFLE_BUFFER, len(inputs)), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if training:
        augmenter = make_augmenter(seed)
        dataset = dataset.map(lambda x, *rest: (tf.clip_by_value(augmenter(x, training=True), 0.0, 1.0), *rest),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """One-hot float32 targets for integer labels."""
    return np.eye(classes, dtype=np.float32)[labels]

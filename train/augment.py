"""Training-time augmentation and the ``tf.data`` input pipeline."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from fakeblock.common.preprocess import normalise_faces

SHUFFLE_BUFFER = 8192
ERASE_AREA_FRACTION = (0.02, 0.2)
ERASE_ASPECT_RATIO = (0.3, 3.3)


def make_augmenter(seed: int) -> keras.Sequential:
    """Flips, small shifts, rotations, zooms, and contrast and brightness changes."""
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


def erase_random_rectangles(faces: tf.Tensor, seed: tf.Tensor, probability: float) -> tf.Tensor:
    """Random erasing: fill one rectangle of each chosen face with uniform noise.

    ``faces`` is a batch ``(n, height, width, 1)`` of values in [0, 1]; each face is chosen
    with ``probability``. The rectangle covers 2-20 % of the face with a height:width ratio
    between 0.3 and 3.3, clipped to the face. ``seed`` (two integers) makes it repeatable.
    It hides part of the face (a mouth, an eye) so the network cannot lean on one region.
    """
    shape = tf.shape(faces)
    count, height, width = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=6)

    def uniform(index: int, low: float = 0.0, high: float = 1.0) -> tf.Tensor:
        return tf.random.stateless_uniform([count], seeds[index], minval=low, maxval=high)

    area = uniform(0, *ERASE_AREA_FRACTION) * tf.cast(height * width, tf.float32)
    log_ratio = uniform(1, float(np.log(ERASE_ASPECT_RATIO[0])), float(np.log(ERASE_ASPECT_RATIO[1])))
    ratio = tf.exp(log_ratio)
    rectangle_height = tf.minimum(tf.sqrt(area * ratio), tf.cast(height, tf.float32))
    rectangle_width = tf.minimum(tf.sqrt(area / ratio), tf.cast(width, tf.float32))
    top = uniform(2) * (tf.cast(height, tf.float32) - rectangle_height)
    left = uniform(3) * (tf.cast(width, tf.float32) - rectangle_width)
    chosen = uniform(4) < probability
    rows = _span_mask(top, rectangle_height, height)
    columns = _span_mask(left, rectangle_width, width)
    inside = rows[:, :, tf.newaxis] & columns[:, tf.newaxis, :] & chosen[:, tf.newaxis, tf.newaxis]
    noise = tf.random.stateless_uniform(shape, seeds[5], dtype=faces.dtype)
    return tf.where(inside[..., tf.newaxis], noise, faces)


def _span_mask(start: tf.Tensor, length: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """``(n, size)`` booleans: which of ``size`` pixels fall in each span ``[start, start + length)``."""
    pixels = tf.cast(tf.range(size), tf.float32)[tf.newaxis, :]
    return (pixels >= tf.round(start)[:, tf.newaxis]) & (pixels < tf.round(start + length)[:, tf.newaxis])


def make_tf_dataset(faces: np.ndarray, targets: np.ndarray, batch_size: int, training: bool,
                    seed: int = 1337, sample_weights: np.ndarray | None = None,
                    erase_probability: float = 0.0) -> tf.data.Dataset:
    """Batches of normalised faces, one-hot (or soft) targets and optional per-face weights.

    Augmented when ``training``; then ``erase_probability`` of the faces also get a
    rectangle of noise (``erase_random_rectangles``).
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
        if erase_probability > 0:
            batch_seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
            dataset = tf.data.Dataset.zip((dataset, batch_seeds)).map(
                lambda columns, batch_seed: (erase_random_rectangles(columns[0], batch_seed, erase_probability),
                                             *columns[1:]),
                num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """One-hot float32 targets for integer labels."""
    return np.eye(classes, dtype=np.float32)[labels]

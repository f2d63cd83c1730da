"""Training-time augmentation and the ``tf.data`` input pipelines.

The training input is a pure function of the seed and the epoch, so a run resumed at
epoch ``e`` sees the very batches an uninterrupted run sees there (see ``training_batches``).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from keras.random import SeedGenerator

from fakeblock.common.model_io import FACE_INPUT_SHAPE
from fakeblock.common.preprocess import normalise_faces
from fakeblock.train.pipeline_view import pipeline_views

# Independent random streams of the training input, each seeded by (seed, stream, epoch, batch).
ORDER_STREAM, AUGMENT_STREAM, ERASE_STREAM, VIEW_STREAM = 1, 2, 3, 4
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


class _DrawsFrom(SeedGenerator):
    """Seeds for Keras's random ops, derived from one fixed seed: the k-th draw folds in k.

    Keras's random layers draw from a ``SeedGenerator`` whose state is a variable; in a
    parallel ``tf.data`` map the batches race for it, and a new process starts it again
    from the seed, so a resumed run would see its first epoch's augmentations again.  This
    one holds no variable: a traced augmentation is a pure function of the seed it gets.
    """

    def __init__(self, seed: tf.Tensor):  # no super().__init__(): that would create the state variable
        self.fixed_seed = seed
        self.draws = 0

    def next(self, ordered: bool = True) -> tf.Tensor:
        self.draws += 1
        return tf.random.experimental.stateless_fold_in(self.fixed_seed, self.draws)


def augment(augmenter: keras.Sequential, faces: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """``augmenter``'s layers applied to a batch, each drawing from ``seed`` (two integers) alone."""
    for index, layer in enumerate(augmenter.layers):
        draws = _DrawsFrom(tf.random.experimental.stateless_fold_in(seed, index))
        transformation = layer.get_random_transformation(faces, training=True, seed=draws)
        faces = layer.transform_images(faces, transformation, training=True)
    return tf.clip_by_value(faces, 0.0, 1.0)


def batch_seed(seed: int, stream: int, epoch: tf.Tensor, step: tf.Tensor | int = 0) -> tf.Tensor:
    """The stateless seed of one random stream (order, augmentation, erasing) at one epoch and batch."""
    key = tf.constant([seed, stream], tf.int64)
    return tf.random.experimental.stateless_fold_in(tf.random.experimental.stateless_fold_in(key, epoch), step)


def epoch_order(count: int, seed: int, epoch: tf.Tensor) -> tf.Tensor:
    """The order of the ``count`` training faces in ``epoch``: a permutation fixed by seed and epoch."""
    return tf.argsort(tf.random.stateless_uniform([count], batch_seed(seed, ORDER_STREAM, epoch)))


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches in one pass over ``count`` faces (the last one may be short)."""
    return -(-count // batch_size)


def training_batches(faces: np.ndarray, targets: np.ndarray, batch_size: int, seed: int = 1337,
                     first_epoch: int = 0, sample_weights: np.ndarray | None = None,
                     erase_probability: float = 0.0, pipeline_view_share: float = 0.0) -> tf.data.Dataset:
    """Endless augmented batches ``(faces, targets[, weights])``, epoch after epoch from ``first_epoch``.

    Each epoch is one pass over every face (``steps_per_epoch`` batches) in its own order,
    and each batch is augmented (and, with ``erase_probability``, erased) with seeds made
    from ``(seed, epoch, batch)`` alone: epoch ``e`` holds the same batches whether the run
    started at 0 or was resumed at ``e``, however many threads build them. A share
    ``pipeline_view_share`` of each batch is first shown as the pipeline sees a face in a
    video (``pipeline_view``), the same way on the same seeds.
    """
    inputs = tf.constant(np.asarray(faces, np.uint8))
    columns = [tf.constant(targets.astype(np.float32))]
    if sample_weights is not None:
        columns.append(tf.constant(sample_weights.astype(np.float32)))
    count, augmenter = len(faces), make_augmenter(seed)
    steps = steps_per_epoch(count, batch_size)

    def epoch_rows(epoch: tf.Tensor) -> tf.data.Dataset:
        """``(epoch, batch, its rows)`` for each batch of ``epoch``; the epoch's order is drawn once."""
        order = epoch_order(count, seed, epoch)
        return tf.data.Dataset.range(steps).map(
            lambda step: (epoch, step, order[step * batch_size:(step + 1) * batch_size]))

    def make_batch(epoch: tf.Tensor, step: tf.Tensor, rows: tf.Tensor) -> tuple[tf.Tensor, ...]:
        batch = model_input(tf.gather(inputs, rows), batch_seed(seed, VIEW_STREAM, epoch, step), pipeline_view_share)
        batch = augment(augmenter, batch, batch_seed(seed, AUGMENT_STREAM, epoch, step))
        if erase_probability > 0:
            batch = erase_random_rectangles(batch, batch_seed(seed, ERASE_STREAM, epoch, step), erase_probability)
        return (batch, *(tf.gather(column, rows) for column in columns))

    batches = tf.data.Dataset.counter(first_epoch).flat_map(epoch_rows)
    return batches.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def model_input(faces: tf.Tensor, seed: tf.Tensor, view_share: float) -> tf.Tensor:
    """A uint8 batch ``(n, 48, 48)`` as model input, a share ``view_share`` of it first seen as the pipeline sees it.

    Both steps run in numpy, so the faces become input through ``normalise_faces``, the one
    definition serving uses too; the views are drawn from ``seed`` alone.
    """
    def prepare(batch: np.ndarray, key: np.ndarray) -> np.ndarray:
        return normalise_faces(pipeline_views(batch, key, view_share) if view_share > 0 else batch)

    prepared = tf.numpy_function(prepare, [faces, seed], tf.float32, stateful=False)
    return tf.ensure_shape(prepared, [None, *FACE_INPUT_SHAPE])


def evaluation_batches(faces: np.ndarray, targets: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """One pass of batches ``(faces, targets)`` in order, not augmented: for validation."""
    dataset = tf.data.Dataset.from_tensor_slices((normalise_faces(faces), targets.astype(np.float32)))
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """One-hot float32 targets for integer labels."""
    return np.eye(classes, dtype=np.float32)[labels]

"""Model architectures, one functional ``make_*`` builder per name.

* ``default``: a VGG-style network with batch normalisation, sized so that it classifies
  over 1,000 faces/s on two CPU cores (about 64 M multiply-adds per face). The first stage,
  at full 48x48 resolution, is kept narrow because it costs the most time per
  multiply-add; the width goes into the cheap low-resolution stages instead.
* ``wide``: the same design about 2.4 times as costly (151 M multiply-adds per face), with
  more dropout. Too slow for the classify stage's 1,000 faces/s on older two-core machines;
  it is trained as a teacher to distil into ``default`` (``fakeblock train --teacher``).
* ``seed``: the seed project's AlexNet-like three-convolution network, kept so its result
  can be reproduced (it trained with MSE loss and plain SGD).

Each starts with ``InferenceSmoothing`` (``classify.smoothing``): the identity while
training, at inference the blur that the augmentation's resampling gives training faces.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from fakeblock.classify.blur_layer import InferenceSmoothing, smoothing_sigma
from fakeblock.common.errors import UserError
from fakeblock.common.model_io import EMOTIONS, FACE_INPUT_SHAPE

DEFAULT_STAGE_WIDTHS = (16, 40, 112, 224)
DEFAULT_STAGE_DROPOUT = (0.0, 0.1, 0.1, 0.2)
DEFAULT_DENSE_DROPOUT = 0.4
DEFAULT_DENSE_UNITS = 256
WIDE_STAGE_WIDTHS = (32, 64, 160, 320)
WIDE_STAGE_DROPOUT = (0.0, 0.1, 0.2, 0.3)
WIDE_DENSE_DROPOUT = 0.5
WIDE_DENSE_UNITS = 512
# Layer names every network shares, the ensemble included: its input, the blur that makes
# served faces look like training's, and its scores.
INPUT_NAME = "face"
SMOOTHING_NAME = "inference_smoothing"
SCORES_NAME = "emotion_scores"


def face_input() -> keras.KerasTensor:
    """The input of every network: a batch of normalised grey faces."""
    return keras.Input(FACE_INPUT_SHAPE, name=INPUT_NAME)


def emotion_scores(features) -> keras.KerasTensor:
    """The head of every network: one softmax score per emotion, in ``EMOTIONS`` order."""
    return layers.Dense(len(EMOTIONS), activation="softmax", name=SCORES_NAME)(features)


def make_default_model(stage_widths=DEFAULT_STAGE_WIDTHS, dense_units=DEFAULT_DENSE_UNITS,
                       stage_dropout=DEFAULT_STAGE_DROPOUT, dense_dropout: float = DEFAULT_DENSE_DROPOUT,
                       weight_decay: float = 1e-4, name: str = "fakeblock_default") -> keras.Model:
    """VGG-style: per stage two 3x3 conv + BN + ReLU, max-pool and dropout, then a dense head."""
    regulariser = keras.regularizers.l2(weight_decay) if weight_decay else None
    inputs = face_input()
    x = InferenceSmoothing(name=SMOOTHING_NAME)(inputs)
    for width, dropout in zip(stage_widths, stage_dropout, strict=True):
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_regularizer=regulariser)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, use_bias=False, kernel_regularizer=regulariser)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(dense_dropout)(x)
    outputs = emotion_scores(x)
    return keras.Model(inputs, outputs, name=name)


def make_wide_model() -> keras.Model:
    """The default design, wider and with more dropout: a teacher network (see the module notes)."""
    return make_default_model(WIDE_STAGE_WIDTHS, WIDE_DENSE_UNITS, WIDE_STAGE_DROPOUT, WIDE_DENSE_DROPOUT,
                              name="fakeblock_wide")


def make_seed_model() -> keras.Model:
    """The seed's AlexNet-like network: three convolutions and two wide dense layers."""
    inputs = face_input()
    x = InferenceSmoothing(name=SMOOTHING_NAME)(inputs)
    x = layers.Conv2D(64, 5, activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=5, strides=2)(x)
    x = layers.Conv2D(64, 5, activation="relu")(x)
    x = layers.AveragePooling2D(pool_size=3, strides=2)(x)
    x = layers.Conv2D(128, 4, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(3072, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = emotion_scores(x)
    return keras.Model(inputs, outputs, name="fakeblock_seed")


ARCHITECTURES = {"default": make_default_model, "wide": make_wide_model, "seed": make_seed_model}


class ArchitectureError(UserError, ValueError):
    """An architecture name that ``ARCHITECTURES`` does not know."""


def make_model(architecture: str) -> keras.Model:
    """Build the named architecture (see ``ARCHITECTURES``)."""
    if architecture not in ARCHITECTURES:
        raise ArchitectureError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture]()


def describe_layers(model: keras.Model) -> dict:
    """Convolution widths, dense sizes and multiply-adds per face, for the model card."""
    widths, dense_units, multiply_adds = [], [], 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kernel_height, kernel_width, channels_in, channels_out = layer.kernel.shape
            _batch, height, width, _channels = layer.output.shape
            widths.append(int(channels_out))
            multiply_adds += height * width * kernel_height * kernel_width * channels_in * channels_out
        elif isinstance(layer, layers.Dense):
            inputs, outputs = layer.kernel.shape
            dense_units.append(int(outputs))
            multiply_adds += inputs * outputs
    return {"convolution_widths": widths, "dense_units": dense_units, "multiply_adds_per_face": int(multiply_adds),
            "inference_smoothing_sigma_px": smoothing_sigma(model)}


def load_initial_weights(model: keras.Model, path: str | Path) -> None:
    """Start ``model`` from the weights of a saved ``.keras`` model with the same layers.

    This is a warm restart: a finished run continued with a fresh learning-rate schedule.
    """
    from fakeblock.classify.model_runtime import ModelError, load_keras_model

    path = Path(path)
    source = load_keras_model(path)
    wanted = [tuple(weight.shape) for weight in model.weights]
    found = [tuple(weight.shape) for weight in source.weights]
    if wanted != found:
        raise ModelError(f"{path}: its layers do not match the {model.name} architecture; "
                         "--init-from needs a model trained with the same --arch")
    model.set_weights(source.get_weights())

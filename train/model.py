"""Model architectures, one functional ``make_*`` builder per name.

* ``default``: a VGG-style network with batch normalisation, sized so that it classifies
  over 1,000 faces/s on two CPU cores (about 66 M multiply-adds per face).
* ``seed``: the seed project's AlexNet-like three-convolution network, kept so its result
  can be reproduced (it trained with MSE loss and plain SGD).
"""

from __future__ import annotations

import keras
from keras import layers

from fakeblock.common.preprocess import EMOTIONS, FACE_SIZE_PX

DEFAULT_STAGE_WIDTHS = (24, 48, 96, 192)
DEFAULT_DENSE_UNITS = 256


def make_default_model(stage_widths=DEFAULT_STAGE_WIDTHS, dense_units=DEFAULT_DENSE_UNITS,
                       weight_decay: float = 1e-4) -> keras.Model:
    """VGG-style: per stage two 3x3 conv + BN + ReLU, max-pool and dropout, then a dense head."""
    regulariser = keras.regularizers.l2(weight_decay) if weight_decay else None
    inputs = keras.Input((FACE_SIZE_PX, FACE_SIZE_PX, 1), name="face")
    x = inputs
    for stage, width in enumerate(stage_widths):
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_regularizer=regulariser)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(0.1 + 0.05 * stage)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, use_bias=False, kernel_regularizer=regulariser)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(len(EMOTIONS), activation="softmax", name="emotion_scores")(x)
    return keras.Model(inputs, outputs, name="fakeblock_default")


def make_seed_model() -> keras.Model:
    """The seed's AlexNet-like network: three convolutions and two wide dense layers."""
    inputs = keras.Input((FACE_SIZE_PX, FACE_SIZE_PX, 1), name="face")
    x = layers.Conv2D(64, 5, activation="relu")(inputs)
    x = layers.MaxPooling2D(pool_size=5, strides=2)(x)
    x = layers.Conv2D(64, 5, activation="relu")(x)
    x = layers.AveragePooling2D(pool_size=3, strides=2)(x)
    x = layers.Conv2D(128, 4, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(3072, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(len(EMOTIONS), activation="softmax", name="emotion_scores")(x)
    return keras.Model(inputs, outputs, name="fakeblock_seed")


ARCHITECTURES = {"default": make_default_model, "seed": make_seed_model}


def make_model(architecture: str) -> keras.Model:
    """Build the named architecture (see ``ARCHITECTURES``)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture]()

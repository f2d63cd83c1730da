"""Keras model -> ``.tflite`` file for the classify stage, with float16 or int8 weights.

* ``float16``: weights stored as float16 (half the file); XNNPACK computes in float32, so
  the scores match the Keras model's to about three decimals.
* ``int8``: weights and activations quantised to 8 bits, their ranges calibrated on real
  training faces. On this project's 2-core AVX-512 VNNI machine the int8 export of the
  default network ran 3.9 times as fast as the float one and scored 0.1 points lower on
  PublicTest (65.06 % -> 64.98 %); CPUs without VNNI gain less. The file still takes and
  returns float32, so the classify runtime feeds it the same normalised faces.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fakeblock.common.errors import UserError
from fakeblock.common.preprocess import normalise_faces

QUANTIZATIONS = ("float16", "int8")
CALIBRATION_BATCH_SIZE = 16


class ExportError(UserError, ValueError):
    """An export that cannot be made as asked (an unknown quantisation, no calibration faces)."""


def check_quantization(quantization: str) -> None:
    """Raise ``ExportError`` unless ``quantization`` is one of ``QUANTIZATIONS``."""
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; choose {' or '.join(QUANTIZATIONS)}")


def calibration_batches(faces: np.ndarray, batch_size: int = CALIBRATION_BATCH_SIZE) -> Iterator[list[np.ndarray]]:
    """Normalised float32 batches of ``faces``, in the form the TFLite converter calibrates on."""
    for start in range(0, len(faces), batch_size):
        yield [normalise_faces(faces[start:start + batch_size])]


def export_tflite(model: keras.Model, path: Path, quantization: str = "float16",
                  calibration_faces: np.ndarray | None = None) -> None:
    """Convert ``model`` to a TFLite file with a dynamic batch dimension.

    ``int8`` needs ``calibration_faces`` (uint8 48x48 faces, a thousand or so from the
    training split) to measure each layer's range of values.
    """
    check_quantization(quantization)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    else:
        if calibration_faces is None or not len(calibration_faces):
            raise ExportError("int8 quantization needs calibration faces")
        converter.representative_dataset = lambda: calibration_batches(calibration_faces)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints every captured tensor
        Path(path).write_bytes(converter.convert())

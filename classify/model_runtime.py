"""Load an emotion model (``.keras`` or ``.tflite``) and score batches of faces.

This is the only place the classify stage touches TensorFlow or LiteRT, and ``fakeblock
eval`` uses it too, so evaluation measures exactly what the pipeline runs.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np

from fakeblock.common.errors import UserError
from fakeblock.common.model_io import EMOTION_COUNT, FACE_INPUT_SHAPE, FACE_SIZE_PX
from fakeblock.common.native_stderr import logged_native_stderr
from fakeblock.common.preprocess import normalise_faces
from fakeblock.common.tensorflow_setup import missing_tensorflow, needs_tensorflow_message, quiet_tensorflow

LOGGER = logging.getLogger(__name__)
TFLITE_SUFFIX = ".tflite"
KERAS_SUFFIX = ".keras"
# Keras's older single-file format, still loaded.
LEGACY_KERAS_SUFFIX = ".h5"
DEFAULT_MODEL_NAME = "emotion" + TFLITE_SUFFIX
# LiteRT recompiles its plan when the batch size changes, so batches are padded up to one
# of these sizes (and split when larger than the last).
PADDED_BATCH_SIZES = (1, 4, 8, 16, 32)


class ModelError(UserError, ValueError):
    """The model file is missing, unreadable or does not map 48x48 faces to seven scores."""


def default_model_path() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("fakeblock.classify") / "models" / DEFAULT_MODEL_NAME))


def padded_size(count: int) -> int:
    """The smallest fixed batch size that holds ``count`` faces."""
    for size in PADDED_BATCH_SIZES:
        if count <= size:
            return size
    return PADDED_BATCH_SIZES[-1]


def load_keras_model(path: Path):
    """A saved ``.keras`` model, uncompiled; a file Keras cannot read is a ``ModelError``.

    Keras comes with the ``train`` extra only: without it this is a ``ModelError`` naming the extra.
    """
    quiet_tensorflow()
    try:
        import keras

        import fakeblock.classify.blur_layer  # noqa: F401  registers InferenceSmoothing for loading
    except ImportError as error:
        if not missing_tensorflow(error):
            raise
        raise ModelError(f"{path}: {needs_tensorflow_message('a Keras model')} (or use a .tflite model)") from None
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad file
        raise ModelError(f"{path}: not a Keras model ({type(error).__name__}: {error})") from None


def tflite_interpreter_class():
    """LiteRT's ``Interpreter``, else TensorFlow's bundled one (platforms without LiteRT wheels).

    With neither installed this is a ``ModelError`` saying what to install.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        LOGGER.debug("LiteRT is not installed; trying TensorFlow's interpreter")
    quiet_tensorflow()
    try:
        import tensorflow
    except ImportError as error:
        if not missing_tensorflow(error):
            raise
        raise ModelError("a .tflite model needs LiteRT (pip install ai-edge-litert) or, where LiteRT has "
                         "no wheel, TensorFlow (pip install tensorflow)") from None
    # ``tf.lite.Interpreter`` is the public name: ``from tensorflow.lite import Interpreter``
    # finds the bare source package in TensorFlow 2.20, which exports nothing.
    return tensorflow.lite.Interpreter


def open_tflite(path: Path, threads: int | None = None):
    """A LiteRT interpreter for ``path`` (TensorFlow's bundled one without LiteRT wheels).

    A file that is not a TFLite model is a ``ModelError``.
    """
    interpreter_class = tflite_interpreter_class()
    try:
        # The first allocation creates the XNNPACK delegate, whose notice LiteRT prints on
        # the raw stderr descriptor: logged at debug level instead.
        with logged_native_stderr(LOGGER):
            interpreter = interpreter_class(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ModelError(f"{path}: not a TFLite model ({error})") from None
    return interpreter


class EmotionModel:
    """Scores uint8 48x48 faces with a Keras or LiteRT model: ``scores(faces) -> (N, 7)``."""

    def __init__(self, path: str | Path | None = None, threads: int | None = None):
        self.path = Path(path) if path else default_model_path()
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        self.threads = threads
        suffix = self.path.suffix.lower()
        if suffix == TFLITE_SUFFIX:
            self._predict = self._load_litert()
        elif suffix in (KERAS_SUFFIX, LEGACY_KERAS_SUFFIX):
            self._predict = self._load_keras()
        else:
            raise ModelError(f"{self.path}: expected a .keras or .tflite model")

    def scores(self, faces: np.ndarray) -> np.ndarray:
        """Emotion scores ``(N, 7)`` for uint8 faces ``(N, 48, 48)``; N may be 0."""
        faces = np.asarray(faces)
        if len(faces) == 0:
            return np.zeros((0, EMOTION_COUNT), np.float32)
        inputs = normalise_faces(faces)
        largest = PADDED_BATCH_SIZES[-1]
        parts = [self._predict_padded(inputs[start:start + largest]) for start in range(0, len(inputs), largest)]
        result = np.concatenate(parts)
        if result.shape != (len(faces), EMOTION_COUNT):
            raise ModelError(f"{self.path}: model returned shape {result.shape} for {len(faces)} faces")
        return result

    def _predict_padded(self, inputs: np.ndarray) -> np.ndarray:
        count = len(inputs)
        size = padded_size(count)
        if size != count:
            padding = np.zeros((size - count,) + inputs.shape[1:], inputs.dtype)
            inputs = np.concatenate([inputs, padding])
        return self._predict(inputs)[:count]

    def _load_litert(self):
        interpreter = open_tflite(self.path, self.threads)
        input_detail = interpreter.get_input_details()
        output_detail = interpreter.get_output_details()
        if len(input_detail) != 1 or tuple(input_detail[0]["shape"][1:]) != FACE_INPUT_SHAPE:
            raise ModelError(f"{self.path}: model input must be (N, {FACE_SIZE_PX}, {FACE_SIZE_PX}, 1), not "
                             f"{[tuple(d['shape']) for d in input_detail]}")
        if len(output_detail) != 1 or int(output_detail[0]["shape"][-1]) != EMOTION_COUNT:
            raise ModelError(f"{self.path}: model output must have {EMOTION_COUNT} scores")
        input_index, output_index = input_detail[0]["index"], output_detail[0]["index"]
        state: dict[str, int | None] = {"batch": None}  # the batch size the tensors are allocated for

        def predict(inputs: np.ndarray) -> np.ndarray:
            if state["batch"] != len(inputs):
                interpreter.resize_tensor_input(input_index, list(inputs.shape))
                interpreter.allocate_tensors()
                state["batch"] = len(inputs)
            interpreter.set_tensor(input_index, inputs)
            interpreter.invoke()
            return interpreter.get_tensor(output_index).copy()

        return predict

    def _load_keras(self):
        model = load_keras_model(self.path)
        if tuple(model.input_shape[1:]) != FACE_INPUT_SHAPE or model.output_shape[-1] != EMOTION_COUNT:
            raise ModelError(f"{self.path}: model maps {model.input_shape} to {model.output_shape}; "
                             f"expected (N, {FACE_SIZE_PX}, {FACE_SIZE_PX}, 1) to (N, {EMOTION_COUNT})")
        return lambda inputs: np.asarray(model(inputs, training=False))

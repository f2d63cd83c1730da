"""Rebuild trainable Keras weights from a ``.tflite`` export, so a shipped model can be trained on.

The package ships only ``emotion.tflite``. Its converter folded every batch normalisation
into the convolution or dense layer before it, so the file holds, per layer, one kernel and
one bias. To train on, the Keras network needs its batch normalisations back: each gets the
mean and variance its input really has on some training faces, and a scale and offset that
undo them, so the rebuilt model computes exactly what the ``.tflite`` computes and batch
statistics during training start close to the ones it saw when it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from fakeblock.classify.model_runtime import ModelError, open_tflite
from fakeblock.common.preprocess import normalise_faces

CALIBRATION_FACES = 2048


@dataclass(frozen=True)
class FoldedLayer:
    """One convolution or dense layer of a ``.tflite`` file: kernel in Keras layout, and bias."""

    kernel: np.ndarray
    bias: np.ndarray


def read_folded_layers(path: str | Path) -> list[FoldedLayer]:
    """The convolution and dense layers of ``path`` in graph order, kernels in Keras layout.

    Float exports give their weights as they are. An int8 export (such as ``fakeblock
    ensemble`` writes) gives them dequantised: each 8-bit kernel and 32-bit bias multiplied
    by its per-channel scale, so the rebuilt float network computes what the int8 one
    approximates. An ensemble gives its members one after another (see ``member_layers``).
    """
    interpreter = open_tflite(Path(path))
    operations = interpreter._get_ops_details()
    details = {int(detail["index"]): detail for detail in interpreter.get_tensor_details()}
    dequantized_from = {int(op["outputs"][0]): int(op["inputs"][0])
                        for op in operations if op["op_name"] == "DEQUANTIZE"}

    def constant(index: int) -> np.ndarray:
        index = dequantized_from.get(int(index), int(index))
        return dequantize(interpreter.get_tensor(index), details[index]["quantization_parameters"])

    def bias(op: dict, outputs: int) -> np.ndarray:
        index = int(op["inputs"][2]) if len(op["inputs"]) > 2 else -1
        return constant(index) if index >= 0 else np.zeros(outputs, np.float32)  # -1: no bias

    folded = []
    for op in operations:
        if op["op_name"] == "CONV_2D":
            kernel = constant(op["inputs"][1])  # (out, h, w, in)
            if kernel.shape[0] == kernel.shape[3] == 1:
                continue  # one channel in and out: the fixed blur of InferenceSmoothing, not a layer to train
            folded.append(FoldedLayer(kernel.transpose(1, 2, 3, 0), bias(op, kernel.shape[0])))
        elif op["op_name"] == "FULLY_CONNECTED":
            kernel = constant(op["inputs"][1])  # (out, in)
            folded.append(FoldedLayer(kernel.T, bias(op, kernel.shape[0])))
    return folded


def dequantize(values: np.ndarray, quantization: dict) -> np.ndarray:
    """``values`` as float32: integers times their scale, per channel along the quantised axis."""
    if not np.issubdtype(values.dtype, np.integer):
        return values.astype(np.float32)
    scales = np.asarray(quantization["scales"], np.float32)
    if not scales.size:
        raise ModelError("an integer weight tensor without a quantisation scale")
    zero_points = np.asarray(quantization["zero_points"], np.float32)
    shape = [1] * values.ndim
    if scales.size > 1:
        shape[int(quantization["quantized_dimension"])] = scales.size
    return ((values.astype(np.float32) - zero_points.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def member_layers(folded: list[FoldedLayer], layer_count: int, member: int | None, path: str | Path
                  ) -> list[FoldedLayer]:
    """The layers of one member of an ensemble: the ``member``-th run of ``layer_count`` layers.

    A file with one network needs no ``member`` (0 is accepted too). ``ModelError`` when the
    file's layer count is not a whole number of networks, or ``member`` is not one of them.
    """
    members, rest = divmod(len(folded), layer_count) if layer_count else (0, len(folded))
    if rest or not members:
        return folded  # not whole networks of this shape: check_matches says so
    if member is None:
        if members > 1:
            raise ModelError(f"{path} is an ensemble of {members} networks; choose one with --init-member "
                             f"0 to {members - 1}")
        member = 0
    if not 0 <= member < members:
        raise ModelError(f"--init-member {member}: {path} holds networks 0 to {members - 1}")
    return folded[member * layer_count:(member + 1) * layer_count]


def kernel_layer_count(model: keras.Model) -> int:
    """How many convolution and dense layers ``model`` has."""
    return len(_weight_layers(model)[0])


def _weight_layers(model: keras.Model) -> tuple[list[layers.Layer], list[layers.BatchNormalization]]:
    kernels = [layer for layer in model.layers if isinstance(layer, (layers.Conv2D, layers.Dense))]
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    return kernels, norms


def check_matches(model: keras.Model, folded: list[FoldedLayer], path: str | Path) -> None:
    """Raise ``ModelError`` unless ``folded`` fits ``model`` layer for layer."""
    kernels, norms = _weight_layers(model)
    wanted = [tuple(layer.kernel.shape) for layer in kernels]
    found = [tuple(layer.kernel.shape) for layer in folded]
    # every kernel but the last feeds a batch normalisation; the last has its own bias
    if wanted != found or len(norms) != len(kernels) - 1:
        raise ModelError(f"{path}: its layers do not match the {model.name} architecture; "
                         "--init-from needs a model trained with the same --arch")


def load_folded_weights(model: keras.Model, folded: list[FoldedLayer], faces: np.ndarray) -> None:
    """Give ``model`` the weights of ``folded``, with batch statistics measured on uint8 ``faces``.

    Only the first ``CALIBRATION_FACES`` faces are used.
    """
    kernels, norms = _weight_layers(model)
    for layer, source in zip(kernels, folded, strict=True):
        if layer.use_bias:
            layer.set_weights([source.kernel, source.bias])
        else:
            layer.set_weights([source.kernel])
    for norm, source in zip(norms, folded, strict=False):
        # first the identity statistics, so that every layer's input below is already right
        ones = np.ones_like(source.bias)
        norm.set_weights([ones, source.bias, np.zeros_like(ones), ones - norm.epsilon])
    norm_inputs = keras.Model(model.inputs, [norm.input for norm in norms])
    sample = normalise_faces(faces[:CALIBRATION_FACES])
    activations = norm_inputs.predict(sample, batch_size=256, verbose=0)
    for norm, activation, source in zip(norms, activations, folded, strict=False):
        axes = tuple(range(activation.ndim - 1))
        mean = activation.mean(axis=axes)
        variance = activation.var(axis=axes)
        scale = np.sqrt(variance + norm.epsilon)
        # scale * (x - mean) / sqrt(variance + eps) + offset == x + bias
        norm.set_weights([scale, mean + source.bias, mean, variance])

"""``fakeblock ensemble``: trained models averaged inside one network, exported as one ``.tflite``.

An ensemble of networks that err differently is more accurate than any of them (on
FER2013 PublicTest, a default and a wide network of 64.7 % and 64.8 % together score
66.0 % in int8), and averaging inside one graph lets the classify stage run it through the
same runtime, as one model file. Exported with int8 quantisation (see ``export``), two
default networks classify faces twice as fast as one float default network.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from fakeblock.classify.blur_layer import TRAINING_BLUR_SIGMA_PX, InferenceSmoothing, smoothing_sigma
from fakeblock.classify.model_runtime import KERAS_SUFFIX, EmotionModel, ModelError, load_keras_model
from fakeblock.common.errors import UserError
from fakeblock.train import class_metrics, data
from fakeblock.train.card import shared_fields, write_card
from fakeblock.train.export import check_quantization, export_tflite
from fakeblock.train.model import SCORES_NAME, SMOOTHING_NAME, describe_layers, face_input
from fakeblock.train.run_files import BEST_MODEL_NAME, CARD_NAME, CONFUSION_PLOT_NAME, TFLITE_NAME

LOGGER = logging.getLogger(__name__)


@dataclass
class EnsembleConfig:
    """Everything ``fakeblock ensemble`` can be told; recorded in the model card."""

    models: tuple[str, ...]
    data: str
    output: str = "runs/ensemble"
    quantization: str = "int8"
    calibration_faces: int = 1000
    tta: bool = False
    smoothing_sigma_px: float = TRAINING_BLUR_SIGMA_PX
    seed: int = 1337


def member_path(path: str | Path) -> Path:
    """The ``.keras`` file of a member: the file itself, or a training run folder's best model."""
    path = Path(path)
    if path.is_dir():
        path = path / BEST_MODEL_NAME
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if path.suffix != KERAS_SUFFIX:
        raise ModelError(f"{path}: an ensemble is built from .keras models (a training run's {BEST_MODEL_NAME}), "
                         "not from exported files")
    return path


def first_output(outputs):
    """A model's score tensor, whether Keras hands it over alone or in a one-element list."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def build_ensemble(members: list[keras.Model], tta: bool = False,
                   smoothing_sigma_px: float = TRAINING_BLUR_SIGMA_PX) -> keras.Model:
    """One network whose scores are the mean of the members' (and, with ``tta``, of their mirror images').

    Members trained before architectures had their own ``InferenceSmoothing`` layer get the
    faces blurred by ``smoothing_sigma_px`` (0: not at all); the others blur for themselves.
    """
    faces = face_input()
    smoothed = InferenceSmoothing(smoothing_sigma_px, name=SMOOTHING_NAME)(faces)
    scores = []
    for member in members:
        member_faces = faces if smoothing_sigma(member) is not None else smoothed
        views = [member_faces, keras.ops.flip(member_faces, axis=2)] if tta else [member_faces]
        scores += [first_output(member(view)) for view in views]
    mean = keras.layers.Average(name=SCORES_NAME)(scores) if len(scores) > 1 else scores[0]
    return keras.Model(faces, mean, name="fakeblock_ensemble")


def run(config: EnsembleConfig) -> dict:
    """Build, export, evaluate on the validation split and describe the ensemble; return its card."""
    check_quantization(config.quantization)  # before any file or data is read
    if not config.models:
        raise UserError("name at least one --model")
    paths = [member_path(path) for path in config.models]
    members = [load_keras_model(path) for path in paths]  # every file is checked before the data is read
    for number, member in enumerate(members):
        member.name = f"member_{number}"  # nested models need distinct names
    dataset = data.load_dataset(config.data, seed=config.seed)
    validation_split = dataset.validation_split()
    training_faces, _ = dataset.splits[dataset.training_split()]
    validation_faces, validation_labels = dataset.splits[validation_split]
    if not len(validation_faces):
        raise data.DataError(f"{config.data}: the {validation_split} split is empty; evaluation needs faces")
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    rows = np.random.default_rng(config.seed).permutation(len(training_faces))[:config.calibration_faces]
    LOGGER.info("exporting %d model(s) as one %s network (calibrated on %d training faces)", len(members),
                config.quantization, len(rows) if config.quantization == "int8" else 0)
    network = build_ensemble(members, config.tta, config.smoothing_sigma_px)
    export_tflite(network, output / TFLITE_NAME, config.quantization, training_faces[np.sort(rows)])
    scores = EmotionModel(output / TFLITE_NAME).scores(validation_faces)
    summary = class_metrics.summarise(validation_labels, scores.argmax(axis=1))
    card = model_card(config, paths, members, dataset, validation_split, summary)
    write_card(output / CARD_NAME, card)
    from fakeblock.train.plots import plot_confusion

    plot_confusion(np.asarray(summary["confusion"]), output / CONFUSION_PLOT_NAME,
                   title=f"{validation_split}: accuracy {summary['accuracy']:.1%}")
    LOGGER.info("ensemble: %s accuracy %.4f on %s", output / TFLITE_NAME, summary["accuracy"], validation_split)
    return card


def member_training(path: Path) -> dict:
    """How a member was trained, from the card beside its ``model.keras`` (a training run's), if there is one."""
    card_path = path.with_name(CARD_NAME)
    try:
        card = json.loads(card_path.read_text())
        return {"training": {"config": card["config"], "epochs": card["epochs"],
                             "pipeline_view": card.get("pipeline_view"),
                             "validation_accuracy": card["validation"]["accuracy"]}}
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # a bare .keras file: nothing more to say


def model_card(config: EnsembleConfig, paths: list[Path], members: list[keras.Model], dataset: data.FaceDataset,
               validation_split: str, summary: dict) -> dict:
    """The ``model.json`` record of the ensemble: its members, export, data and accuracy."""
    described = [{"model": str(path), "parameters": int(member.count_params()), "layers": describe_layers(member),
                  **member_training(path)}
                 for path, member in zip(paths, members, strict=True)]
    views = 2 if config.tta else 1
    return {
        "architecture": "ensemble",
        "members": described,
        "parameters": sum(member["parameters"] for member in described),
        "layers": {"multiply_adds_per_face":
                   views * sum(member["layers"]["multiply_adds_per_face"] for member in described)},
        "quantization": config.quantization,
        **shared_fields(dataset, validation_split, summary),
        "config": asdict(config),
    }

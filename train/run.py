"""``fakeblock train``: compile, fit with validation and checkpoints, evaluate, export."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from fakeblock.classify.model_runtime import TFLITE_SUFFIX, EmotionModel, ModelError
from fakeblock.common.errors import UserError
from fakeblock.common.model_io import EMOTIONS
from fakeblock.train import class_metrics, data, distill, from_tflite, pipeline_view
from fakeblock.train.augment import evaluation_batches, one_hot, steps_per_epoch, training_batches
from fakeblock.train.card import shared_fields, write_card
from fakeblock.train.export import export_tflite
from fakeblock.train.fit_progress import RichProgress
from fakeblock.train.model import describe_layers, load_initial_weights, make_model
from fakeblock.train.pipeline_view_settings import PIPELINE_VIEW_SHARE
from fakeblock.train.resume import ReseedDropout, ResumePoint, restore, rewind_history
from fakeblock.train.run_files import (
    BACKUP_FOLDER_NAME,
    BEST_MODEL_NAME,
    CARD_NAME,
    CONFIG_NAME,
    CONFUSION_PLOT_NAME,
    HISTORY_NAME,
    HISTORY_PLOT_NAME,
    TFLITE_NAME,
    TIMING_NAME,
)

LOGGER = logging.getLogger(__name__)
WARMUP_EPOCHS = 2


@dataclass
class TrainConfig:
    """Everything ``fakeblock train`` can be told; recorded in the model card."""

    data: str
    output: str = "runs/default"
    architecture: str = "default"
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    loss: str = "crossentropy"
    label_smoothing: float = 0.1
    class_weight_power: float = 0.25
    seed: int = 1337
    resume: bool = False
    ferplus: str | None = None
    max_rows: int | None = None
    init_from: str | None = None
    init_member: int | None = None
    teachers: tuple[str, ...] = ()
    teacher_weight: float = 0.5
    erase_probability: float = 0.0
    pipeline_view_share: float = PIPELINE_VIEW_SHARE


class TrainError(UserError, ValueError):
    """A problem with the user's request, shown as one line."""


def learning_rate_at(epoch: int, config: TrainConfig) -> float:
    """Linear warm-up for two epochs, then cosine decay to 1 % of the peak."""
    if config.optimizer == "sgd" and config.architecture == "seed":
        return config.learning_rate
    if epoch < WARMUP_EPOCHS:
        return config.learning_rate * (epoch + 1) / WARMUP_EPOCHS
    progress = (epoch - WARMUP_EPOCHS) / max(config.epochs - WARMUP_EPOCHS, 1)
    return config.learning_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Weights ``(max_count / count) ** power`` per class, so rare classes count a bit more."""
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(np.float64)
    weights = np.where(counts > 0, (counts.max() / np.maximum(counts, 1)) ** power, 0.0)
    return (weights / weights[labels].mean()).astype(np.float32)


def _targets(dataset: data.FaceDataset, split: str, labels: np.ndarray) -> np.ndarray:
    return dataset.targets.get(split, one_hot(labels, len(EMOTIONS)))


def _sample_rows(count: int, wanted: int, seed: int) -> np.ndarray:
    """A seeded random subset of row indices, in their original order."""
    # Not simply the first rows: image folders are read class by class, so the first rows
    # of a folder dataset would all be 'angry'.
    return np.sort(np.random.default_rng(seed).choice(count, size=wanted, replace=False))


def _compile(model: keras.Model, config: TrainConfig) -> None:
    if config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(config.learning_rate)
    elif config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(config.learning_rate, momentum=config.momentum, nesterov=config.momentum > 0)
    else:
        raise TrainError(f"unknown optimizer {config.optimizer!r}; choose adam or sgd")
    if config.loss == "crossentropy":
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    elif config.loss == "mse":
        loss = keras.losses.MeanSquaredError()
    else:
        raise TrainError(f"unknown loss {config.loss!r}; choose crossentropy or mse")
    model.compile(optimizer=optimizer, loss=loss, metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])


def _best_so_far(history_path: Path) -> float | None:
    if not history_path.exists():
        return None
    with open(history_path, newline="") as handle:
        values = [float(row["val_accuracy"]) for row in csv.DictReader(handle) if row.get("val_accuracy")]
    return max(values) if values else None


def _check_output(config: TrainConfig) -> Path:
    """The output folder, refused at once when it cannot take this run; made only when the first file is written.

    Made later, a run that fails on its data, a teacher or ``--init-from`` leaves no empty
    folder behind.
    """
    output = Path(config.output)
    backup = output / BACKUP_FOLDER_NAME
    nearest = next(folder for folder in (output.absolute(), *output.absolute().parents) if folder.exists())
    if not nearest.is_dir():
        raise TrainError(f"--output {output}: {nearest} is a file, not a folder")
    if not os.access(nearest, os.W_OK):
        raise TrainError(f"--output {output}: folder {nearest} is not writable")
    if backup.exists() and not config.resume:
        raise TrainError(f"{output} holds an unfinished run; pass --resume to continue it or choose another --output")
    if config.resume and not backup.exists():
        raise TrainError(f"{output}: nothing to resume (no checkpoint in {backup})")
    return output


def run(config: TrainConfig) -> dict:
    """Train, keep the best model by validation accuracy, evaluate and export it; return the card."""
    keras.utils.set_random_seed(config.seed)
    model = make_model(config.architecture)  # an unknown name fails at once
    output = _check_output(config)
    folded_layers = _check_initial_weights(model, config)  # before the data is read: a wrong file fails at once
    teachers = [EmotionModel(path) for path in config.teachers]  # a bad teacher fails before the data is read
    dataset = data.load_dataset(config.data, ferplus=config.ferplus, seed=config.seed)
    validation_split = dataset.validation_split()
    train_faces, train_labels, train_targets = _training_rows(config, dataset, teachers)
    if folded_layers is not None:
        from_tflite.load_folded_weights(model, folded_layers, train_faces)
        LOGGER.info("starting from the weights of %s", config.init_from)
    validation_faces, validation_labels = dataset.splits[validation_split]
    if not len(validation_faces):
        raise TrainError(f"{config.data}: the {validation_split} split is empty; validation needs faces")
    LOGGER.info("training on %d %s faces, validating on %d %s faces", len(train_faces),
                dataset.training_split(), len(validation_faces), validation_split)
    weights = class_weights(train_labels, config.class_weight_power)
    validation_data = evaluation_batches(validation_faces, one_hot(validation_labels, len(EMOTIONS)), 256)

    _compile(model, config)
    first_epoch = restore(model, output / BACKUP_FOLDER_NAME) if config.resume else 0
    if config.resume:
        rewind_history(output / HISTORY_NAME, first_epoch)
    train_data = training_batches(train_faces, train_targets, config.batch_size, config.seed, first_epoch,
                                  sample_weights=weights[train_labels], erase_probability=config.erase_probability,
                                  pipeline_view_share=config.pipeline_view_share)
    output.mkdir(parents=True, exist_ok=True)  # the data and the model are sound: now the run writes
    (output / CONFIG_NAME).write_text(json.dumps(asdict(config), indent=2) + "\n")
    timer = EpochTimer(output / TIMING_NAME)
    model.fit(train_data, validation_data=validation_data, epochs=config.epochs, initial_epoch=first_epoch,
              steps_per_epoch=steps_per_epoch(len(train_faces), config.batch_size),
              callbacks=[timer, *_callbacks(config, output)], verbose=0, shuffle=False)  # the input shuffles
    shutil.rmtree(output / BACKUP_FOLDER_NAME, ignore_errors=True)
    return finish(config, output, dataset, validation_split, timer.total_s())


def _check_initial_weights(model: keras.Model, config: TrainConfig) -> list[from_tflite.FoldedLayer] | None:
    """Load ``--init-from`` if it is a ``.keras`` model; read and check it if it is a ``.tflite``.

    A ``.tflite`` file's batch statistics are measured on training faces, so its weights
    are returned and loaded once the data is read.
    """
    if not config.init_from:
        return None
    path = Path(config.init_from)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file for --init-from")
    if config.init_member is not None and path.suffix != TFLITE_SUFFIX:
        raise ModelError(f"--init-member picks a network of an ensemble .tflite; {path} is not one")
    if path.suffix == TFLITE_SUFFIX:
        folded = from_tflite.read_folded_layers(path)
        folded = from_tflite.member_layers(folded, from_tflite.kernel_layer_count(model), config.init_member, path)
        from_tflite.check_matches(model, folded, path)
        return folded
    load_initial_weights(model, path)
    LOGGER.info("starting from the weights of %s", path)
    return None


def _training_rows(config: TrainConfig, dataset: data.FaceDataset, teachers: Sequence[EmotionModel] = ()
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces, labels and targets to train on: the training split, or ``max_rows`` of it.

    With teachers, the targets are blended with the teachers' scores (see ``distill``).
    """
    split = dataset.training_split()
    faces, labels = dataset.splits[split]
    targets = _targets(dataset, split, labels)
    if not len(faces):
        raise TrainError(f"{config.data}: the {split} split is empty; training needs faces")
    if config.max_rows and config.max_rows < len(faces):
        rows = _sample_rows(len(faces), config.max_rows, config.seed)
        faces, labels, targets = faces[rows], labels[rows], targets[rows]
    if teachers:
        scores = distill.teacher_scores(teachers, faces)
        targets = distill.blend_targets(targets, scores, config.teacher_weight)
    return faces, labels, targets


def _callbacks(config: TrainConfig, output: Path) -> list[keras.callbacks.Callback]:
    """Best-model checkpoint, learning-rate schedule, history, the resume point and progress.

    At an epoch's end they run in this order: the best model and the history row are
    written before the resume point, so a run killed in between runs that epoch again
    (``rewind_history`` drops its row); the progress line comes once all are saved.
    """
    history_path = output / HISTORY_NAME
    # Only a resumed run must beat its earlier epochs; a fresh run into a finished output
    # folder must not inherit the old best, or it might never save and would then export
    # the previous run's model.keras as its own.
    best_so_far = _best_so_far(history_path) if config.resume else None
    return [
        ReseedDropout(config.seed),
        keras.callbacks.ModelCheckpoint(str(output / BEST_MODEL_NAME), monitor="val_accuracy", mode="max",
                                        save_best_only=True, initial_value_threshold=best_so_far),
        keras.callbacks.LearningRateScheduler(lambda epoch: learning_rate_at(epoch, config)),
        keras.callbacks.CSVLogger(str(history_path), append=config.resume),
        ResumePoint(output / BACKUP_FOLDER_NAME),
        RichProgress(config.epochs),
    ]


class EpochTimer(keras.callbacks.Callback):
    """Adds each epoch's duration to ``timing.json``, so a resumed run reports its whole wall time."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.started_s = 0.0

    def total_s(self) -> float:
        """Seconds spent in finished epochs, over every session of this run."""
        try:
            return float(json.loads(self.path.read_text())["wall_time_s"])
        except (OSError, ValueError, KeyError):
            return 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started_s = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        total_s = self.total_s() + time.monotonic() - self.started_s
        self.path.write_text(json.dumps({"wall_time_s": round(total_s, 1), "epochs": epoch + 1}) + "\n")


def finish(config: TrainConfig, output: Path, dataset: data.FaceDataset, validation_split: str,
           wall_time_s: float) -> dict:
    """Export the best model to TFLite, evaluate it, and write the card and plots."""
    from fakeblock.classify.model_runtime import EmotionModel
    from fakeblock.train.plots import plot_confusion, plot_history

    best = keras.saving.load_model(output / BEST_MODEL_NAME, compile=False)
    export_tflite(best, output / TFLITE_NAME)
    faces, labels = dataset.splits[validation_split]
    scores = EmotionModel(output / TFLITE_NAME).scores(faces)
    summary = class_metrics.summarise(labels, scores.argmax(axis=1))
    card = model_card(config, dataset, validation_split, summary, best, wall_time_s, output / HISTORY_NAME)
    write_card(output / CARD_NAME, card)
    plot_history(output / HISTORY_NAME, output / HISTORY_PLOT_NAME)
    plot_confusion(np.asarray(summary["confusion"]), output / CONFUSION_PLOT_NAME,
                   title=f"{validation_split}: accuracy {summary['accuracy']:.1%}")
    LOGGER.info("best model: %s accuracy %.4f on %s", output / TFLITE_NAME, summary["accuracy"], validation_split)
    return card


def model_card(config: TrainConfig, dataset: data.FaceDataset, validation_split: str, summary: dict,
               model: keras.Model, wall_time_s: float, history_path: Path) -> dict:
    """The ``model.json`` record of how a model was made and how well it does."""
    with open(history_path, newline="") as handle:
        epochs_run = sum(1 for _ in csv.DictReader(handle))
    return {
        "architecture": config.architecture,
        "parameters": int(model.count_params()),
        "layers": describe_layers(model),
        **shared_fields(dataset, validation_split, summary),
        "epochs": epochs_run,
        "wall_time_s": round(wall_time_s, 1),
        "config": asdict(config),
        "pipeline_view": pipeline_view.parameters() if config.pipeline_view_share > 0 else None,
    }

"""Checkpoints of an unfinished ``fakeblock train`` run, and resuming from the last one.

After every epoch the whole training state is saved: the weights, the batch-norm
statistics and the optimizer's moments and step count (Keras's ``save_weights``).  The
epoch count is in the file's name and the file is written under a temporary name and
renamed into place, so a kill at any moment leaves either the previous checkpoint or the
new one, never half of one.

Everything else that decides an epoch is a function of the epoch number: the learning
rate (``learning_rate_at``), the order of the faces and their augmentation
(``augment.training_batches``), and the dropout masks (``ReseedDropout``; ``save_weights``
does not hold the dropout layers' seed state).  A resumed run therefore repeats the epochs an
uninterrupted run would have run, and the history keeps only the epochs a checkpoint
holds (an epoch logged but not yet saved when the run died is run again).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

import keras
import numpy as np

from fakeblock.common.errors import UserError

LOGGER = logging.getLogger(__name__)
CHECKPOINT_NAME = "epoch-{epochs:04d}.weights.h5"
CHECKPOINT_PATTERN = re.compile(r"epoch-(\d{4,})\.weights\.h5")
SEED_STATE_NAME = "seed_generator_state"  # the variable of every keras.random.SeedGenerator
PARTIAL_NAME = "partial.weights.h5"  # Keras insists on the suffix; renamed once complete


def latest_checkpoint(folder: Path) -> tuple[int, Path] | None:
    """``(epochs done, path)`` of the newest complete checkpoint in ``folder``, or None."""
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = CHECKPOINT_PATTERN.fullmatch(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return max(found) if found else None


def restore(model: keras.Model, folder: Path) -> int:
    """Load the newest checkpoint in ``folder`` into the compiled ``model``; return the epochs it holds."""
    latest = latest_checkpoint(folder)
    if latest is None:
        LOGGER.info("%s holds no finished epoch: starting from the first", folder)
        return 0
    epochs_done, path = latest
    model.optimizer.build(model.trainable_variables)  # its moments must exist to be loaded
    try:
        model.load_weights(path)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot resume from {path}: {error}; remove {folder} to start again") from error
    LOGGER.info("resuming after epoch %d from %s", epochs_done, path)
    return epochs_done


def rewind_history(history_path: Path, epochs_done: int) -> None:
    """Keep only the rows of the epochs a checkpoint holds (a later row was logged, not saved)."""
    if not history_path.exists():
        return
    with open(history_path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    kept = [row for row in rows if row.get("epoch", "").isdigit() and int(row["epoch"]) < epochs_done]
    if len(kept) == len(rows) or fields is None:
        return
    LOGGER.info("%s: dropping %d logged epoch(s) the checkpoint does not hold", history_path, len(rows) - len(kept))
    partial = history_path.with_name(history_path.name + ".partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(partial, history_path)


class ResumePoint(keras.callbacks.Callback):
    """Saves the whole training state after every epoch; the folder goes once training ends."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def on_train_begin(self, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        partial = self.folder / PARTIAL_NAME
        self.model.save_weights(partial, overwrite=True)
        os.replace(partial, self.folder / CHECKPOINT_NAME.format(epochs=epoch + 1))
        for path in self.folder.iterdir():
            match = CHECKPOINT_PATTERN.fullmatch(path.name)
            if match and int(match.group(1)) < epoch + 1:
                path.unlink()


class ReseedDropout(keras.callbacks.Callback):
    """Seeds the model's random layers (dropout) from the run's seed and the epoch number.

    Their seed state advances by one per batch and is not saved with the weights; reset
    at each epoch's start, the masks of epoch ``e`` are the same in a resumed run as in an
    uninterrupted one.
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        states = sorted((variable for variable in self.model.non_trainable_variables
                         if variable.name == SEED_STATE_NAME), key=lambda variable: variable.path)
        for index, state in enumerate(states):
            mixed = np.random.SeedSequence([self.seed, index, epoch]).generate_state(1)[0] % (2**31 - 1)
            state.assign(np.array([mixed, 0], dtype=state.dtype))

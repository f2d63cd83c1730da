"""A rich progress bar for Keras ``fit`` with live loss and accuracy, plus a log line per epoch."""

from __future__ import annotations

import logging

import keras
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

LOGGER = logging.getLogger(__name__)


class RichProgress(keras.callbacks.Callback):
    """Shows batches of the current epoch and the latest metrics; logs each finished epoch."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self.progress = Progress(TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[metrics]}"), TimeRemainingColumn(),
                                 transient=True)
        self.task = None

    def on_train_begin(self, logs=None):
        self.progress.start()

    def on_epoch_begin(self, epoch, logs=None):
        steps = self.params.get("steps")
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task("train", total=steps, epoch=epoch + 1, epochs=self.epochs, metrics="")

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        text = f"loss {float(logs.get('loss', 0)):.3f} acc {float(logs.get('accuracy', 0)):.3f}"
        self.progress.update(self.task, completed=batch + 1, metrics=text)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        LOGGER.info("epoch %d/%d: loss %.4f accuracy %.4f val_loss %.4f val_accuracy %.4f lr %.2e",
                    epoch + 1, self.epochs, logs.get("loss", float("nan")), logs.get("accuracy", float("nan")),
                    logs.get("val_loss", float("nan")), logs.get("val_accuracy", float("nan")),
                    float(logs.get("learning_rate", float("nan"))))

    def on_train_end(self, logs=None):
        self.progress.stop()

"""PNG plots of training curves and confusion matrices (matplotlib, no display needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fakeblock.common.model_io import EMOTIONS  # noqa: E402


def plot_history(history_path: Path, image_path: Path) -> None:
    """Loss and accuracy per epoch, training against validation."""
    with open(history_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        axis.plot(epochs, [float(row[key]) for row in rows], label="training")
        if rows[0].get(f"val_{key}"):
            axis.plot(epochs, [float(row[f"val_{key}"]) for row in rows], label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(image_path, dpi=100)
    plt.close(figure)


def plot_confusion(matrix: np.ndarray, image_path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts, true labels down, predictions across."""
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    figure, axis = plt.subplots(figsize=(7, 6))
    axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            colour = "white" if share[row, column] > 0.5 else "black"
            axis.text(column, row, f"{share[row, column]:.2f}\n{matrix[row, column]}", ha="center", va="center",
                      fontsize=8, color=colour)
    axis.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45)
    axis.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(image_path, dpi=100)
    plt.close(figure)

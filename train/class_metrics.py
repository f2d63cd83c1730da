"""Accuracy, recall and confusion matrices as plain numpy functions."""

from __future__ import annotations

import numpy as np

from fakeblock.common.model_io import EMOTIONS


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = len(EMOTIONS)) -> np.ndarray:
    """Counts with true labels as rows and predicted labels as columns."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def summarise(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """Accuracy, macro recall, per-class recall and the confusion matrix as a JSON-ready dict."""
    matrix = confusion_matrix(labels, predictions)
    support = matrix.sum(axis=1)
    recall = np.divide(np.diag(matrix), support, out=np.zeros(len(support)), where=support > 0)
    present = support > 0
    return {
        "accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "per_class_recall": {name: float(value) for name, value in zip(EMOTIONS, recall, strict=True)},
        "confusion": matrix.tolist(),
        "n": int(matrix.sum()),
    }

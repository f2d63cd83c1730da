"""What every ``model.json`` card says, whether it describes a training run or an ensemble."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fakeblock.common.model_io import EMOTIONS, FACE_SIZE_PX
from fakeblock.common.preprocess import PREPROCESSING
from fakeblock.train import data


def write_card(path: Path, card: dict) -> None:
    """Write a model card as indented JSON, one key a line, ending in a newline."""
    path.write_text(json.dumps(card, indent=2) + "\n")


def shared_fields(dataset: data.FaceDataset, validation_split: str, summary: dict) -> dict:
    """Classes, input, preprocessing, data, validation results and library versions."""
    return {
        "classes": list(EMOTIONS),
        "input_size_px": [FACE_SIZE_PX, FACE_SIZE_PX],
        "preprocessing": PREPROCESSING,
        "data": {"source": Path(dataset.source).name, "sha256": dataset.fingerprint,
                 "training_split": dataset.training_split(), "validation_split": validation_split},
        "validation": summary,
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__},
    }


def without_machine_paths(card: object, root: Path) -> object:
    """``card`` with every absolute path made portable: relative to ``root`` inside it, else its last two parts.

    A card ships with the package; the folders of the machine that trained it mean nothing
    elsewhere, but ``v4/model.keras`` still says which run a member came from.
    """
    if isinstance(card, dict):
        return {key: without_machine_paths(value, root) for key, value in card.items()}
    if isinstance(card, list):
        return [without_machine_paths(value, root) for value in card]
    if isinstance(card, str) and card.startswith("/"):
        path = Path(card)
        if path.is_relative_to(root):
            return str(path.relative_to(root))
        return str(Path(*path.parts[-2:]))
    return card

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

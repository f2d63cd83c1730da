"""Synthetic training data of every layout and the train CLI, for the training tests
(tests/test_train.py, tests/test_distill.py, tests/test_ensemble.py and their fixtures in
tests/conftest.py).

Faces are drawn, not downloaded: a grey head with a bar whose angle depends on the
emotion, so labels are learnable.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from fakeblock.common.preprocess import EMOTIONS
from fakeblock.control.cli.app import app

ROWS_PER_CLASS = {"Training": 4, "PublicTest": 2}


# ---------------------------------------------------------------- synthetic data

def draw_face(label: int, generator: np.random.Generator, size_px: int = 48) -> np.ndarray:
    """A grey 'face': an ellipse with a bright bar at an angle that encodes the label."""
    image = np.full((48, 48), 60, np.uint8)
    cv2.ellipse(image, (24, 24), (17, 21), 0, 0, 360, 150, -1)
    angle = np.pi * label / len(EMOTIONS) + generator.normal(0, 0.05)
    end = (int(24 + 14 * np.cos(angle)), int(24 + 14 * np.sin(angle)))
    cv2.line(image, (24, 24), end, 250, 3)
    noisy = image + generator.normal(0, 6, image.shape)
    face = np.clip(noisy, 0, 255).astype(np.uint8)
    return face if size_px == 48 else cv2.resize(face, (size_px, size_px))


def labelled_rows() -> list[tuple[int, str]]:
    """(label, Usage) in Kaggle order: every Training row, then every PublicTest row."""
    return [(label, usage) for usage, count in ROWS_PER_CLASS.items() for _ in range(count)
            for label in range(len(EMOTIONS))]


def write_kaggle_csv(path: Path, rows: list[tuple[int, str]], with_usage: bool = True) -> Path:
    """Write ``emotion,pixels[,Usage]`` rows; gzip when the name ends in .gz."""
    generator = np.random.default_rng(7)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"] if with_usage else ["emotion", "pixels"])
        for label, usage in rows:
            pixels = " ".join(map(str, draw_face(label, generator).ravel()))
            writer.writerow([label, pixels, usage] if with_usage else [label, pixels])
    return path


def write_image_tree(root: Path, splits: dict[str, int] | None = None) -> Path:
    """``<split>/<emotion>/*.jpg|png`` of various sizes, grey and colour; no split level when None."""
    generator = np.random.default_rng(11)
    sizes_px = (40, 48, 64, 100)
    for split, count in (splits or {"": 5}).items():
        for label, emotion in enumerate(EMOTIONS):
            folder = root / split / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                face = draw_face(label, generator, sizes_px[index % len(sizes_px)])
                image = face if index % 2 else cv2.merge([face, face, np.clip(face * 1.1, 0, 255).astype(np.uint8)])
                cv2.imwrite(str(folder / f"{index}.{'png' if index % 3 == 0 else 'jpg'}"), image)
    return root


def write_ferplus(path: Path, rows: list[tuple[int, str]], dropped: set[int], label_shift: int = 0) -> Path:
    """fer2013new.csv aligned with ``rows``: 8 votes for label + ``label_shift``, 2 for the next
    emotion; ``dropped`` rows have no image name (odd indices) or only contempt votes (even)."""
    columns = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
               "contempt", "unknown", "NF"]
    ferplus_order = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for index, (label, usage) in enumerate(rows):
            votes = [0] * 10
            winner = ferplus_order.index(EMOTIONS[(label + label_shift) % len(EMOTIONS)])
            votes[winner] = 8
            votes[(winner + 1) % 7] = 2
            name = f"fer{index:07d}.png"
            if index in dropped and index % 2:
                name = ""  # FER+ removed the image; its votes must not count
            elif index in dropped:
                votes = [0] * 7 + [10, 0, 0]  # contempt only: no vote for our seven emotions
            writer.writerow([usage, name, *votes])
    return path


# ---------------------------------------------------------------- CLI helpers

def invoke(*arguments: str):
    """Run the CLI in-process; stderr is captured apart from stdout."""
    return CliRunner().invoke(app, [str(argument) for argument in arguments])


def train(data_path: Path, output: Path, *options: str, epochs: int = 1, max_rows: int = 16):
    return invoke("train", "--data", data_path, "--output", output, "--epochs", epochs, "--max-rows", max_rows,
                  "--batch-size", "16", *options)

"""What every loader of :mod:`fakeblock.train.data` returns: faces and labels by split.

Split names, the held-out split for data that names none, and :class:`DataError` live
here, below both the loaders and the FER+ votes, so each can import them without
importing the other.  No TensorFlow or OpenCV here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fakeblock.common.errors import UserError

TRAINING_SPLIT_NAMES = ("Training", "train", "training")
# Held-out split names in order of preference for validation: a real validation split wins
# over a test split, so model choice never peeks at the test set when both exist.
VALIDATION_SPLIT_NAMES = ("PublicTest", "validation", "val", "test", "PrivateTest")
# Data without split names is split into "train" and "validation", holding out this
# share of each class.
HOLDOUT_FRACTION = 0.2


class DataError(UserError, ValueError):
    """Raised for data a user gave us that we cannot read; the message is shown as is."""


@dataclass
class FaceDataset:
    """Faces and labels per split; ``targets`` holds FER+ soft labels when present."""

    source: str
    fingerprint: str
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    targets: dict[str, np.ndarray] = field(default_factory=dict)

    def training_split(self) -> str:
        """Name of the split to train on."""
        for name in TRAINING_SPLIT_NAMES:
            if name in self.splits:
                return name
        raise DataError(f"{self.source}: no training split (have {sorted(self.splits)})")

    def validation_split(self) -> str:
        """Name of the split used for validation and model choice."""
        for name in VALIDATION_SPLIT_NAMES:
            if name in self.splits:
                return name
        raise DataError(f"{self.source}: no validation split (have {sorted(self.splits)})")

    def select(self, split: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Faces and labels of one split, or of every split but training when ``split`` is None."""
        if split is not None:
            if split not in self.splits:
                raise DataError(f"{self.source}: no split named {split!r} (have {sorted(self.splits)})")
            return self.splits[split]
        names = [name for name in self.splits if name not in TRAINING_SPLIT_NAMES]
        if not names:
            raise DataError(f"{self.source}: only training rows; name one with --split")
        faces = np.concatenate([self.splits[name][0] for name in names])
        labels = np.concatenate([self.splits[name][1] for name in names])
        return faces, labels


def stratified_holdout(labels: np.ndarray, seed: int) -> np.ndarray:
    """Boolean mask of the rows held out for validation: 20 % of each class, fixed by ``seed``."""
    generator = np.random.default_rng(seed)
    holdout = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        generator.shuffle(members)
        holdout[members[: int(round(len(members) * HOLDOUT_FRACTION))]] = True
    return holdout


def stratified_split(faces: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """Split into ``train`` and ``validation`` (20 % of each class) with a fixed seed."""
    return _split(faces, labels, stratified_holdout(labels, seed))


def split_unlabelled(groups: dict, targets: dict, seed: int) -> tuple[dict, dict]:
    """Hold out a stratified validation split when the rows carry no split names."""
    if list(groups) != [""]:
        return groups, targets
    faces, labels = groups[""]
    holdout = stratified_holdout(labels, seed)
    if "" in targets:
        targets = {"train": targets[""][~holdout], "validation": targets[""][holdout]}
    return _split(faces, labels, holdout), targets


def _split(faces: np.ndarray, labels: np.ndarray, holdout: np.ndarray) -> dict:
    return {"train": (faces[~holdout], labels[~holdout]), "validation": (faces[holdout], labels[holdout])}

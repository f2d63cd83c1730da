"""FER+ labels: the crowd votes of ``fer2013new.csv`` in place of FER2013's own labels.

fer2013new.csv (Barsoum et al., 2016) has the columns ``Usage,Image name,neutral,happiness,
surprise,sadness,anger,disgust,fear,contempt,unknown,NF`` and one row per fer2013.csv row, in
the same order.  Rows without an image name, or without a vote for one of our seven
emotions, are faces FER+ dropped; we drop them too.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fakeblock.common.model_io import EMOTIONS
from fakeblock.train.dataset import DataError

# The votes file, looked for beside fer2013.csv.
FERPLUS_FILE_NAME = "fer2013new.csv"
# "majority": each face's label becomes its most voted emotion; "probability": training
# also targets the share of votes for each emotion.
MAJORITY, PROBABILITY = "majority", "probability"
FERPLUS_MODES = (MAJORITY, PROBABILITY)
# Vote columns, in fer2013new.csv order, mapped to our classes (contempt, unknown and
# not-a-face votes are dropped).
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")
VOTE_TO_EMOTION = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise",
                   "sadness": "sad", "anger": "angry", "disgust": "disgust", "fear": "fear"}
REQUIRED_COLUMNS = ("Usage", "Image name") + VOTE_COLUMNS


def apply_votes(path: Path, ferplus_path: Path, groups: dict, mode: str) -> tuple[dict, dict]:
    """Replace labels with FER+ votes; drop faces without an image name or without votes.

    fer2013new.csv is row-aligned with fer2013.csv, so rows are matched in order within each
    ``Usage`` (a CSV that lacks a whole split, like ../shared's without PrivateTest, still
    lines up), or over the whole file when the CSV has no ``Usage`` column.
    """
    usages, soft, named = _read_votes(ferplus_path)
    new_groups, targets = {}, {}
    for name, (faces, _labels) in groups.items():
        rows = np.ones(len(usages), bool) if name == "" else usages == name
        if int(rows.sum()) != len(faces):
            raise DataError(f"{ferplus_path}: {int(rows.sum())} {name or 'data'} rows but {path} has {len(faces)}")
        votes = soft[rows]
        keep = named[rows] & (votes.sum(axis=1) > 0)
        votes = votes[keep] / votes[keep].sum(axis=1, keepdims=True)
        new_groups[name] = (faces[keep], votes.argmax(axis=1).astype(np.int64))
        if mode == PROBABILITY:
            targets[name] = votes
    return new_groups, targets


def _read_votes(ferplus_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of fer2013new.csv: its Usage, votes in ``EMOTIONS`` order, and whether it names an image."""
    usages, counts, named = [], [], []
    try:
        with open(ferplus_path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(REQUIRED_COLUMNS) - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"{ferplus_path}: missing column(s) {', '.join(sorted(missing))}; expected "
                                f"{','.join(REQUIRED_COLUMNS)},contempt,unknown,NF")
            for line_number, row in enumerate(reader, start=2):
                usages.append(row["Usage"] or "")
                named.append(bool((row["Image name"] or "").strip()))
                counts.append(_parse_votes(ferplus_path, line_number, row))
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{ferplus_path}: cannot read ({error})") from None
    soft = np.zeros((len(counts), len(EMOTIONS)), np.float32)
    order = [EMOTIONS.index(VOTE_TO_EMOTION[name]) for name in VOTE_COLUMNS]
    soft[:, order] = np.asarray(counts, np.float32).reshape(len(counts), len(VOTE_COLUMNS))
    return np.asarray(usages, dtype=object), soft, np.asarray(named, bool)


def _parse_votes(path: Path, line_number: int, row: dict) -> list[float]:
    try:
        counts = [float(row[name] or 0) for name in VOTE_COLUMNS]
    except (TypeError, ValueError):
        raise DataError(f"{path}:{line_number}: vote counts must be numbers") from None
    if not all(0 <= count < float("inf") for count in counts):
        raise DataError(f"{path}:{line_number}: vote counts must be finite and not negative")
    return counts

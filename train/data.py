"""Loaders for the data layouts fakeblock trains and evaluates on.

* the Kaggle ``fer2013.csv`` (or ``.csv.gz``) with ``emotion,pixels[,Usage]`` columns,
  optionally with FER+ vote counts in a ``fer2013new.csv`` beside it;
* an image-folder tree ``<root>/<split>/<emotion>/*.jpg`` (or ``<root>/<emotion>/*.jpg``).

Every loader returns a :class:`FaceDataset`: 48x48 uint8 faces and integer labels per
split, plus soft targets when FER+ votes are used.  Parsed arrays are cached by file hash
so a second run starts in seconds.  Only :func:`make_tf_dataset` touches TensorFlow.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fakeblock.common.preprocess import EMOTIONS, FACE_SIZE_PX, resize_face, to_gray

LOGGER = logging.getLogger(__name__)
PIXEL_COUNT = FACE_SIZE_PX * FACE_SIZE_PX
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp", ".tif", ".tiff"}
FOLDER_ALIASES = {"anger": "angry", "disgusted": "disgust", "fearful": "fear", "happiness": "happy",
                  "sadness": "sad", "surprised": "surprise"}
TRAINING_SPLIT_NAMES = ("Training", "train", "training")
HOLDOUT_FRACTION = 0.2
CACHE_FORMAT_VERSION = 2
# FER+ vote columns, in fer2013new.csv order, mapped to our classes (contempt, unknown
# and not-a-face votes are dropped).
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")
FERPLUS_TO_EMOTION = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise",
                      "sadness": "sad", "anger": "angry", "disgust": "disgust", "fear": "fear"}


class DataError(ValueError):
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
        for name in ("PublicTest", "test", "validation", "PrivateTest"):
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


def cache_directory() -> Path:
    """Where parsed datasets are cached (``FAKEBLOCK_CACHE_DIR`` overrides)."""
    configured = os.environ.get("FAKEBLOCK_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fakeblock" / "datasets"


def file_fingerprint(paths: list[Path]) -> str:
    """SHA-256 over the content of the given files, in order."""
    digest = hashlib.sha256(f"v{CACHE_FORMAT_VERSION}".encode())
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def folder_fingerprint(root: Path, files: list[Path]) -> str:
    """Cheap fingerprint of an image tree: relative names, sizes and modification times."""
    digest = hashlib.sha256(f"v{CACHE_FORMAT_VERSION}".encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def load_dataset(path: str | Path, ferplus: str | None = None, use_cache: bool = True,
                 seed: int = 1337) -> FaceDataset:
    """Load any supported layout from ``path`` (a CSV file or an image folder).

    ``ferplus`` is ``None`` (plain labels), ``"majority"`` or ``"probability"``; it needs a
    ``fer2013new.csv`` beside the CSV.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_folder(path, use_cache, seed)
    if not path.name.lower().endswith((".csv", ".csv.gz")):
        raise DataError(f"{path}: expected a .csv, .csv.gz or an image folder")
    ferplus_path = path.parent / "fer2013new.csv"
    if ferplus is not None and not ferplus_path.exists():
        raise DataError(f"{path}: --ferplus needs {ferplus_path}")
    sources = [path] + ([ferplus_path] if ferplus else [])
    fingerprint = file_fingerprint(sources) + (f"-ferplus-{ferplus}" if ferplus else "")
    cached = _read_cache(fingerprint) if use_cache else None
    if cached is not None:
        return FaceDataset(str(path), fingerprint, *cached)
    splits, targets = _parse_csv(path, seed)
    if ferplus:
        splits, targets = _apply_ferplus(path, ferplus_path, splits, ferplus)
    if use_cache:
        _write_cache(fingerprint, splits, targets)
    return FaceDataset(str(path), fingerprint, splits, targets)


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


def _parse_csv(path: Path, seed: int) -> tuple[dict, dict]:
    rows: dict[str, tuple[list, list]] = {}
    try:
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                                f"expected emotion,pixels[,Usage]")
            for line_number, row in enumerate(reader, start=2):
                face, label = _parse_row(path, line_number, row)
                faces, labels = rows.setdefault(row.get("Usage") or "", ([], []))
                faces.append(face)
                labels.append(label)
    except (OSError, EOFError, gzip.BadGzipFile, csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    if not rows:
        raise DataError(f"{path}: no data rows")
    splits = {name: (np.stack(faces), np.asarray(labels, np.int64)) for name, (faces, labels) in rows.items()}
    if list(splits) == [""]:
        return stratified_split(*splits.pop(""), seed=seed), {}
    return splits, {}


def _parse_row(path: Path, line_number: int, row: dict) -> tuple[np.ndarray, int]:
    try:
        label = int(row["emotion"])
    except (TypeError, ValueError):
        raise DataError(f"{path}:{line_number}: emotion {row['emotion']!r} is not a number 0-6") from None
    if not 0 <= label < len(EMOTIONS):
        raise DataError(f"{path}:{line_number}: emotion {label} is outside 0-6")
    try:
        pixels = np.array((row["pixels"] or "").split(), dtype=np.int64)
    except ValueError:
        raise DataError(f"{path}:{line_number}: pixels must be space-separated numbers") from None
    if pixels.size != PIXEL_COUNT:
        raise DataError(f"{path}:{line_number}: expected {PIXEL_COUNT} pixels, found {pixels.size}")
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path}:{line_number}: pixel values must lie in 0-255")
    return pixels.astype(np.uint8).reshape(FACE_SIZE_PX, FACE_SIZE_PX), label


def _apply_ferplus(path: Path, ferplus_path: Path, splits: dict, mode: str) -> tuple[dict, dict]:
    """Replace labels with FER+ votes (row-aligned with fer2013.csv); drop faces with no votes."""
    votes: dict[str, list] = {}
    with open(ferplus_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(FERPLUS_COLUMNS) | {"Usage"} - set(reader.fieldnames or [])
        missing = {name for name in missing if name not in (reader.fieldnames or [])}
        if missing:
            raise DataError(f"{ferplus_path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            counts = [float(row[name] or 0) for name in FERPLUS_COLUMNS]
            votes.setdefault(row["Usage"] or "", []).append(counts)
    order = [EMOTIONS.index(FERPLUS_TO_EMOTION[name]) for name in FERPLUS_COLUMNS]
    new_splits, targets = {}, {}
    for name, (faces, _labels) in splits.items():
        counts = np.asarray(votes.get(name, []), np.float32)
        if len(counts) != len(faces):
            raise DataError(f"{ferplus_path}: {len(counts)} {name} rows but {path} has {len(faces)}")
        soft = np.zeros((len(faces), len(EMOTIONS)), np.float32)
        soft[:, order] = counts
        keep = soft.sum(axis=1) > 0
        soft = soft[keep] / soft[keep].sum(axis=1, keepdims=True)
        new_splits[name] = (faces[keep], soft.argmax(axis=1).astype(np.int64))
        if mode == "probability":
            targets[name] = soft
    return new_splits, targets


def stratified_split(faces: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """Split into ``train`` and ``validation`` (20 % of each class) with a fixed seed."""
    generator = np.random.default_rng(seed)
    holdout = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        generator.shuffle(members)
        holdout[members[: int(round(len(members) * HOLDOUT_FRACTION))]] = True
    return {"train": (faces[~holdout], labels[~holdout]), "validation": (faces[holdout], labels[holdout])}


def _emotion_from_folder(folder: Path) -> int:
    name = FOLDER_ALIASES.get(folder.name.lower(), folder.name.lower())
    if name not in EMOTIONS:
        raise DataError(f"{folder}: unknown emotion folder {folder.name!r}; expected one of {', '.join(EMOTIONS)}")
    return EMOTIONS.index(name)


def _load_folder(root: Path, use_cache: bool, seed: int) -> FaceDataset:
    split_folders = {p.name: p for p in sorted(root.iterdir()) if p.is_dir()}
    if not split_folders:
        raise DataError(f"{root}: empty folder; expected <emotion>/ or <split>/<emotion>/ folders of images")
    nested = all(not _is_emotion_name(name) for name in split_folders)
    layout = split_folders if nested else {"": root}
    files = sorted(p for folder in layout.values() for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    fingerprint = folder_fingerprint(root, files)
    cached = _read_cache(fingerprint) if use_cache else None
    if cached is not None:
        return FaceDataset(str(root), fingerprint, *cached)
    splits = {}
    for split_name, split_root in layout.items():
        faces, labels = _read_emotion_folders(split_root)
        if len(faces):
            splits[split_name] = (faces, labels)
    if "" in splits:
        splits = stratified_split(*splits.pop(""), seed=seed)
    if use_cache:
        _write_cache(fingerprint, splits, {})
    return FaceDataset(str(root), fingerprint, splits)


def _is_emotion_name(name: str) -> bool:
    return FOLDER_ALIASES.get(name.lower(), name.lower()) in EMOTIONS


def _read_emotion_folders(split_root: Path) -> tuple[np.ndarray, np.ndarray]:
    faces, labels = [], []
    for folder in sorted(p for p in split_root.iterdir() if p.is_dir()):
        label = _emotion_from_folder(folder)
        for image_path in sorted(folder.iterdir()):
            if image_path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise DataError(f"{image_path}: not a readable image")
            faces.append(resize_face(to_gray(image)))
            labels.append(label)
    if not faces:
        return np.zeros((0, FACE_SIZE_PX, FACE_SIZE_PX), np.uint8), np.zeros(0, np.int64)
    return np.stack(faces), np.asarray(labels, np.int64)


def _read_cache(fingerprint: str) -> tuple[dict, dict] | None:
    path = cache_directory() / f"{fingerprint}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path) as archive:
            splits, targets = {}, {}
            for key in archive.files:
                kind, name = key.split(":", 1)
                if kind == "faces":
                    splits[name] = (archive[key], archive[f"labels:{name}"])
                elif kind == "targets":
                    targets[name] = archive[key]
        LOGGER.info("loaded cached dataset %s", path)
        return splits, targets
    except (OSError, ValueError, KeyError) as error:
        LOGGER.warning("ignoring unreadable cache %s: %s", path, error)
        return None


def _write_cache(fingerprint: str, splits: dict, targets: dict) -> None:
    directory = cache_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name, (faces, labels) in splits.items():
            arrays[f"faces:{name}"], arrays[f"labels:{name}"] = faces, labels
        for name, soft in targets.items():
            arrays[f"targets:{name}"] = soft
        temporary = directory / f".{fingerprint}.{os.getpid()}.npz"
        np.savez(temporary, **arrays)
        os.replace(temporary, directory / f"{fingerprint}.npz")
    except OSError as error:
        LOGGER.warning("could not cache the parsed dataset in %s: %s", directory, error)

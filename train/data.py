"""Loaders for the data layouts fakeblock trains and evaluates on.

* the Kaggle ``fer2013.csv`` (or ``.csv.gz``) with ``emotion,pixels[,Usage]`` columns,
  optionally with FER+ vote counts in a ``fer2013new.csv`` beside it;
* an image-folder tree ``<root>/<split>/<emotion>/*.jpg`` (or ``<root>/<emotion>/*.jpg``).

Every loader returns a :class:`FaceDataset`: 48x48 uint8 faces and integer labels per
split, plus soft targets when FER+ votes are used (:mod:`fakeblock.train.dataset`).  Parsed
arrays are cached by file hash (:mod:`fakeblock.train.data_cache`) so a second run starts in
seconds.  No TensorFlow here: ``fakeblock eval`` imports this module and must start without it.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fakeblock.common.model_io import EMOTIONS, FACE_SIZE_PX
from fakeblock.common.preprocess import resize_face, to_gray
from fakeblock.train.data_cache import (
    cache_directory,
    cache_key,
    file_fingerprint,
    folder_fingerprint,
    read_cache,
    write_cache,
)
from fakeblock.train.dataset import DataError, FaceDataset, split_unlabelled, stratified_holdout, stratified_split
from fakeblock.train.ferplus import FERPLUS_FILE_NAME, FERPLUS_MODES, apply_votes

# The loaders' results and errors, and the cache, are part of this module's interface.
__all__ = ["DataError", "FaceDataset", "cache_directory", "file_fingerprint", "load_dataset", "stratified_holdout",
           "stratified_split"]
LOGGER = logging.getLogger(__name__)
PIXEL_COUNT = FACE_SIZE_PX * FACE_SIZE_PX
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp", ".tif", ".tiff"}
FOLDER_ALIASES = {"anger": "angry", "disgusted": "disgust", "fearful": "fear", "happiness": "happy",
                  "sadness": "sad", "surprised": "surprise"}


def load_dataset(path: str | Path, ferplus: str | None = None, use_cache: bool = True,
                 seed: int = 1337) -> FaceDataset:
    """Load any supported layout from ``path`` (a CSV file or an image folder).

    ``ferplus`` is ``None`` (plain labels), ``"majority"`` or ``"probability"``; it needs a
    ``fer2013new.csv`` beside the CSV.
    """
    path = check_source(path, ferplus)
    if path.is_dir():
        return _load_folder(path, use_cache, seed)
    ferplus_path = path.parent / FERPLUS_FILE_NAME
    sources = [path] + ([ferplus_path] if ferplus else [])
    fingerprint = file_fingerprint(sources) + (f"-ferplus-{ferplus}" if ferplus else "")
    key = cache_key(fingerprint, seed)
    cached = read_cache(key) if use_cache else None
    if cached is not None:
        return FaceDataset(str(path), fingerprint, *cached)
    groups, targets = _parse_csv(path), {}
    if ferplus:
        groups, targets = apply_votes(path, ferplus_path, groups, ferplus)
    splits, targets = split_unlabelled(groups, targets, seed)
    if use_cache:
        write_cache(key, splits, targets)
    return FaceDataset(str(path), fingerprint, splits, targets)


def check_source(path: str | Path, ferplus: str | None = None) -> Path:
    """What can be checked of ``path`` without reading its faces: that it exists, its layout, a CSV's columns.

    ``fakeblock train`` and ``eval`` call it before TensorFlow loads, so a wrong path or
    file is refused in a moment rather than after seconds of start-up.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if ferplus is not None and ferplus not in FERPLUS_MODES:
        raise DataError(f"unknown FER+ mode {ferplus!r}; choose {' or '.join(FERPLUS_MODES)}")
    if path.is_dir():
        if ferplus:
            raise DataError(f"{path}: --ferplus needs the fer2013.csv(.gz) beside {FERPLUS_FILE_NAME}, not a folder")
        return path
    if not path.name.lower().endswith((".csv", ".csv.gz")):
        raise DataError(f"{path}: expected a .csv, .csv.gz or an image folder")
    ferplus_path = path.parent / FERPLUS_FILE_NAME
    if ferplus is not None and not ferplus_path.exists():
        raise DataError(f"{path}: --ferplus needs {ferplus_path}")
    try:
        with _open_text(path) as handle:
            _check_columns(path, csv.DictReader(handle).fieldnames)
    except (OSError, EOFError, gzip.BadGzipFile, csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    return path


def _check_columns(path: Path, fieldnames: Sequence[str] | None) -> None:
    missing = {"emotion", "pixels"} - set(fieldnames or [])
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected emotion,pixels[,Usage]")


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


def _parse_csv(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Faces and labels grouped by ``Usage`` (all under ``""`` without that column), in file order."""
    rows: dict[str, tuple[list, list]] = {}
    try:
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            _check_columns(path, reader.fieldnames)
            for line_number, row in enumerate(reader, start=2):
                face, label = _parse_row(path, line_number, row)
                faces, labels = rows.setdefault(row.get("Usage") or "", ([], []))
                faces.append(face)
                labels.append(label)
    except (OSError, EOFError, gzip.BadGzipFile, csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    if not rows:
        raise DataError(f"{path}: no data rows")
    return {name: (np.stack(faces), np.asarray(labels, np.int64)) for name, (faces, labels) in rows.items()}


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


def _emotion_from_folder(folder: Path) -> int:
    name = FOLDER_ALIASES.get(folder.name.lower(), folder.name.lower())
    if name not in EMOTIONS:
        raise DataError(f"{folder}: unknown emotion folder {folder.name!r}; expected one of {', '.join(EMOTIONS)}")
    return EMOTIONS.index(name)


def _load_folder(root: Path, use_cache: bool, seed: int) -> FaceDataset:
    top_folders = _subfolders(root)
    if not top_folders:
        raise DataError(f"{root}: empty folder; expected <emotion>/ or <split>/<emotion>/ folders of images")
    layout = {folder.name: folder for folder in top_folders} if _has_split_folders(top_folders) else {"": root}
    files = sorted(p for folder in layout.values() for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    fingerprint = folder_fingerprint(root, files)
    key = cache_key(fingerprint, seed)
    cached = read_cache(key) if use_cache else None
    if cached is not None:
        return FaceDataset(str(root), fingerprint, *cached)
    groups = {}
    for split_name, split_root in layout.items():
        faces, labels = _read_emotion_folders(split_root)
        if len(faces):
            groups[split_name] = (faces, labels)
    if not groups:
        raise DataError(f"{root}: no images inside <emotion>/ folders (emotions: {', '.join(EMOTIONS)})")
    splits, _targets = split_unlabelled(groups, {}, seed)
    if use_cache:
        write_cache(key, splits, {})
    return FaceDataset(str(root), fingerprint, splits)


def _subfolders(folder: Path) -> list[Path]:
    """Visible subfolders, sorted; hidden ones (.ipynb_checkpoints, .git) are not data."""
    return [path for path in sorted(folder.iterdir()) if path.is_dir() and not path.name.startswith(".")]


def _has_split_folders(top_folders: list[Path]) -> bool:
    """True for a ``<split>/<emotion>/`` tree: no top folder is an emotion and some hold folders."""
    # Requiring subfolders means a lone misspelt emotion folder of images ('smiling/') is read
    # as an emotion folder, so the user is told that name is unknown, not that a split is missing.
    return not any(_is_emotion_name(folder.name) for folder in top_folders) and any(
        _subfolders(folder) for folder in top_folders)


def _is_emotion_name(name: str) -> bool:
    return FOLDER_ALIASES.get(name.lower(), name.lower()) in EMOTIONS


def _read_emotion_folders(split_root: Path) -> tuple[np.ndarray, np.ndarray]:
    faces, labels = [], []
    for folder in _subfolders(split_root):
        label = _emotion_from_folder(folder)
        for image_path in sorted(folder.iterdir()):
            if image_path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            # IMREAD_COLOR, like a camera frame: applies EXIF orientation, scales 16-bit images
            # to 8 bits and drops alpha (IMREAD_UNCHANGED did none of these, and 16-bit
            # grey levels wrapped around when cast to uint8).
            image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
            if image is None:
                raise DataError(f"{image_path}: not a readable image")
            faces.append(resize_face(to_gray(image)))
            labels.append(label)
    if not faces:
        return np.zeros((0, FACE_SIZE_PX, FACE_SIZE_PX), np.uint8), np.zeros(0, np.int64)
    return np.stack(faces), np.asarray(labels, np.int64)

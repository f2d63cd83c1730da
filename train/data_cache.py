"""The cache of parsed datasets: one ``.npz`` per data file (or image tree), parser version and seed.

Parsing the FER2013 CSV takes tens of seconds; read from here a second run starts in
seconds.  A cache that cannot be read or written is only warned about: the data is then
parsed again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)
CACHE_DIRECTORY_VARIABLE = "FAKEBLOCK_CACHE_DIR"
# Raised whenever the parsed arrays change, so an older cache is never read back.
CACHE_FORMAT_VERSION = 3
HASH_CHUNK_BYTES = 1 << 20


def cache_directory() -> Path:
    """Where parsed datasets are cached (``FAKEBLOCK_CACHE_DIR`` overrides)."""
    configured = os.environ.get(CACHE_DIRECTORY_VARIABLE)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fakeblock" / "datasets"


def file_fingerprint(paths: list[Path]) -> str:
    """SHA-256 over the content of the given files, in order (``sha256sum`` of a single file)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
                digest.update(chunk)
    return digest.hexdigest()


def folder_fingerprint(root: Path, files: list[Path]) -> str:
    """Cheap fingerprint of an image tree: relative names, sizes and modification times."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_key(fingerprint: str, seed: int) -> str:
    """Cache file stem: the data, the parser version and the seed of any holdout split."""
    # The seed belongs in the key: data without named splits is split with it, and a cache
    # keyed on the data alone would silently hand another seed's split back.
    return f"{fingerprint}-v{CACHE_FORMAT_VERSION}-seed{seed}"


def read_cache(key: str) -> tuple[dict, dict] | None:
    """The splits and soft targets cached under ``key``, or None when there are none (or unreadable)."""
    path = cache_directory() / f"{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path) as archive:
            splits, targets = {}, {}
            for name in archive.files:
                kind, split = name.split(":", 1)
                if kind == "faces":
                    splits[split] = (archive[name], archive[f"labels:{split}"])
                elif kind == "targets":
                    targets[split] = archive[name]
        LOGGER.info("loaded cached dataset %s", path)
        return splits, targets
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
        LOGGER.warning("ignoring unreadable cache %s: %s", path, error)
        return None


def write_cache(key: str, splits: dict, targets: dict) -> None:
    """Cache ``splits`` and ``targets`` under ``key`` (written whole, then renamed into place)."""
    directory = cache_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name, (faces, labels) in splits.items():
            arrays[f"faces:{name}"], arrays[f"labels:{name}"] = faces, labels
        for name, soft in targets.items():
            arrays[f"targets:{name}"] = soft
        temporary = directory / f".{key}.{os.getpid()}.npz"
        np.savez(temporary, **arrays)
        os.replace(temporary, directory / f"{key}.npz")
    except OSError as error:
        LOGGER.warning("could not cache the parsed dataset in %s: %s", directory, error)

"""Shared test helpers: where the shared data lives, and skipping cleanly without it."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MEDIA = SHARED / "media"
FER_CSV = SHARED / "data" / "fer2013" / "fer2013.csv.gz"


def shared_file(path: Path) -> Path:
    """Return ``path`` or skip the test with the reason it is missing."""
    if not path.exists():
        pytest.skip(f"{path} is not available (needs ../shared beside the repository)")
    return path

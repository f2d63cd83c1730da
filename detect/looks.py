"""What a face looks like, reduced to a small normalised grey copy, and how alike two are.

The tracker compares these signatures to tell a face that moved from a face that was
replaced, and a face still there from one that left.
"""

from __future__ import annotations

import cv2
import numpy as np

from fakeblock.detect.boxes import Box, clip

SIGNATURE_SIZE_PX = 16


def signature(gray: np.ndarray, box: Box) -> np.ndarray | None:
    """A small zero-mean, unit-length grey copy of the box, for telling faces apart."""
    clipped = clip(box, gray.shape[1], gray.shape[0])
    if clipped is None:
        return None
    x, y, width, height = clipped
    small = cv2.resize(gray[y:y + height, x:x + width], (SIGNATURE_SIZE_PX, SIGNATURE_SIZE_PX),
                       interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 1e-6 else small


def similarity(first: np.ndarray | None, second: np.ndarray | None) -> float:
    """Normalised correlation of two signatures, in [-1, 1] (0 when either is missing)."""
    if first is None or second is None:
        return 0.0
    return float(np.dot(first, second))

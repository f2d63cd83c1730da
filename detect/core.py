"""Face detection with OpenCV's frontal-face Haar cascade, as plain functions on arrays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fakeblock.common.config import DetectConfig
from fakeblock.common.preprocess import FACE_SIZE_PX, crop_face, to_gray

CASCADE_FILE = "haarcascade_frontalface_default.xml"
Box = tuple[int, int, int, int]


def load_cascade(path: str | Path | None = None) -> cv2.CascadeClassifier:
    """The stock frontal-face cascade that ships with opencv-python (or a given XML file)."""
    path = Path(path) if path else Path(cv2.data.haarcascades) / CASCADE_FILE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise ValueError(f"{path}: not a usable Haar cascade")
    return cascade


def find_faces(gray: np.ndarray, cascade: cv2.CascadeClassifier, params: DetectConfig) -> list[Box]:
    """Boxes ``(x, y, width, height)`` in ``gray``'s pixels, largest first.

    With ``params.detect_scale`` below 1 the cascade runs on a downscaled copy (faster;
    the minimum face size shrinks with it) and boxes are mapped back to full size.
    """
    scale = float(params.detect_scale)
    if not 0 < scale <= 1:
        raise ValueError(f"detect_scale must lie in (0, 1], got {scale}")
    image = gray
    if scale < 1:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        image = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    min_size_px = max(1, round(params.min_size_px * scale))
    found = cascade.detectMultiScale(image, scaleFactor=params.scale_factor, minNeighbors=params.min_neighbors,
                                     minSize=(min_size_px, min_size_px))
    boxes = [tuple(int(round(value / scale)) for value in box) for box in np.asarray(found).reshape(-1, 4)]
    return sorted(boxes, key=lambda box: box[2] * box[3], reverse=True)


def crop_faces(gray: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """48x48 grey crops ``(N, 48, 48)`` uint8 for the classifier, one per box."""
    if not boxes:
        return np.zeros((0, FACE_SIZE_PX, FACE_SIZE_PX), np.uint8)
    return np.stack([crop_face(gray, box) for box in boxes])


def detect(image: np.ndarray, cascade: cv2.CascadeClassifier, params: DetectConfig,
           max_faces: int) -> tuple[list[Box], np.ndarray]:
    """Boxes and crops for one BGR or grey frame, at most ``max_faces`` (the largest)."""
    gray = to_gray(image)
    boxes = find_faces(gray, cascade, params)[:max_faces]
    return boxes, crop_faces(gray, boxes)

"""The one definition of how a face becomes model input.

Training, ``fakeblock eval`` and the classify stage all call these functions, so
serving can never drift from training.  No TensorFlow here: detect imports it.
"""

from __future__ import annotations

import cv2
import numpy as np

from fakeblock.common.model_io import EMOTIONS, FACE_INPUT_SHAPE, FACE_SIZE_PX

__all__ = ["EMOTIONS", "FACE_SIZE_PX", "PREPROCESSING", "crop_face", "normalise_faces", "resize_face", "to_gray"]
PREPROCESSING = {
    "steps": ["crop face box", "convert to grey", f"resize to {FACE_SIZE_PX}x{FACE_SIZE_PX} (INTER_AREA)",
              "divide by 255"],
    "input_shape": list(FACE_INPUT_SHAPE),
    "input_dtype": "float32",
    "input_range": [0.0, 1.0],
}


def to_gray(image: np.ndarray) -> np.ndarray:
    """Return a single-channel uint8 view of a BGR, BGRA or grey image."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    raise ValueError(f"cannot convert an image of shape {image.shape} to grey")


def resize_face(gray_face: np.ndarray) -> np.ndarray:
    """Resize a grey face of any size to the 48x48 uint8 model size."""
    if gray_face.shape == (FACE_SIZE_PX, FACE_SIZE_PX):
        return np.ascontiguousarray(gray_face, dtype=np.uint8)
    shrinking = gray_face.shape[0] >= FACE_SIZE_PX and gray_face.shape[1] >= FACE_SIZE_PX
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(gray_face, (FACE_SIZE_PX, FACE_SIZE_PX), interpolation=interpolation)
    return resized.astype(np.uint8, copy=False)


def crop_face(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Cut the box ``(x, y, width, height)`` out of a grey frame as a 48x48 uint8 face.

    The box is clipped to the frame; an empty intersection raises ``ValueError``.
    """
    x, y, width, height = (int(value) for value in box)
    top, bottom = max(y, 0), min(y + height, gray.shape[0])
    left, right = max(x, 0), min(x + width, gray.shape[1])
    if bottom <= top or right <= left:
        raise ValueError(f"face box {box} lies outside the {gray.shape[1]}x{gray.shape[0]} frame")
    return resize_face(gray[top:bottom, left:right])


def normalise_faces(faces: np.ndarray) -> np.ndarray:
    """Turn uint8 faces ``(N, 48, 48)`` into float32 model input ``(N, 48, 48, 1)`` in [0, 1]."""
    faces = np.asarray(faces)
    if faces.ndim == 2:
        faces = faces[None]
    if faces.ndim == 3:
        faces = faces[..., None]
    if faces.shape[1:] != FACE_INPUT_SHAPE:
        raise ValueError(f"faces must be {FACE_SIZE_PX}x{FACE_SIZE_PX}, got shape {faces.shape}")
    return faces.astype(np.float32) / np.float32(255.0)

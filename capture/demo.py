"""The ``demo`` source: an animated clip made at run time from a real face photo.

The astronaut photo (Eileen Collins, NASA, public domain; ``astronaut.txt`` beside it
says where it comes from), a 512x512 JPEG shipped inside this package and read with
OpenCV, is placed on a 640x480 canvas that drifts along a figure-of-eight and slowly
zooms, so the face moves across the frame and changes size while staying frontal.  The Haar
frontal-face cascade also likes the shuttle in the background, so the background is
softened once, portrait-style, around the face; that keeps the demo free of phantom faces.

The motion repeats every ``DEMO_FRAME_COUNT`` frames, so a live demo loops seamlessly.
"""

from __future__ import annotations

import functools
import importlib.resources
import math

import cv2
import numpy as np

DEMO_WIDTH_PX = 640
DEMO_HEIGHT_PX = 480
DEMO_FPS = 30.0
DEMO_FRAME_COUNT = 300
# The photo, package data of fakeblock.capture (pyproject.toml's [tool.setuptools.package-data]).
PHOTO_FILE = "astronaut.jpg"
# Where the face sits in the 512x512 photo (centre of the Haar box at scale 1).
PHOTO_FACE_CENTER_PX = (224.5, 113.5)
# Sharp ellipse (centre and half-axes) around head and collar; the rest is blurred.
SHARP_CENTER_PX = (224, 125)
SHARP_AXES_PX = (100, 130)
BACKGROUND_BLUR_SIGMA_PX = 6.0
MASK_FEATHER_SIGMA_PX = 15.0
# Motion: zoom range, and how far the face wanders from its resting point on the canvas.
ZOOM_RANGE = (0.85, 1.15)
FACE_REST_PX = (DEMO_WIDTH_PX / 2, 175.0)
FACE_SWING_PX = (160.0, 50.0)
CANVAS_GREY = (48, 48, 48)


def astronaut_photo() -> np.ndarray:
    """The shipped astronaut photo as it is: a fresh 512x512 BGR uint8 array."""
    encoded = (importlib.resources.files(__package__) / PHOTO_FILE).read_bytes()
    photo = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    if photo is None:
        raise ValueError(f"the shipped {PHOTO_FILE} does not decode: reinstall fakeblock")
    return photo


@functools.lru_cache(maxsize=1)
def demo_photo() -> np.ndarray:
    """The astronaut photo as BGR with a softened background (read-only, computed once)."""
    photo = astronaut_photo()
    sharp = np.zeros(photo.shape[:2], np.float32)
    cv2.ellipse(sharp, SHARP_CENTER_PX, SHARP_AXES_PX, 0, 0, 360, 1.0, -1)
    weight = cv2.GaussianBlur(sharp, (0, 0), MASK_FEATHER_SIGMA_PX)[..., None]  # 1 sharp, 0 blurred
    blurred = cv2.GaussianBlur(photo, (0, 0), BACKGROUND_BLUR_SIGMA_PX)
    softened = (photo * weight + blurred * (1.0 - weight)).round().astype(np.uint8)
    softened.setflags(write=False)
    return softened


def demo_view(frame_index: int) -> tuple[float, float, float]:
    """Zoom and the face's centre on the canvas (x, y in pixels) for one frame."""
    phase = 2.0 * math.pi * (frame_index % DEMO_FRAME_COUNT) / DEMO_FRAME_COUNT
    low, high = ZOOM_RANGE
    zoom = low + (high - low) * (0.5 - 0.5 * math.cos(phase))
    face_x = FACE_REST_PX[0] + FACE_SWING_PX[0] * math.sin(phase)
    face_y = FACE_REST_PX[1] + FACE_SWING_PX[1] * math.sin(2.0 * phase)
    return zoom, face_x, face_y


def render_demo_frame(frame_index: int) -> np.ndarray:
    """One 640x480 BGR demo frame (a fresh, writable array)."""
    zoom, face_x, face_y = demo_view(frame_index)
    photo_x, photo_y = PHOTO_FACE_CENTER_PX
    # Scale about the photo's origin, then shift so the photo's face lands on (face_x, face_y).
    transform = np.array([[zoom, 0.0, face_x - zoom * photo_x], [0.0, zoom, face_y - zoom * photo_y]], np.float32)
    return cv2.warpAffine(demo_photo(), transform, (DEMO_WIDTH_PX, DEMO_HEIGHT_PX), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=CANVAS_GREY)

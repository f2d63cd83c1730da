"""Where the picture changed since the previous frame, from a small blurred copy of each.

Frame differencing at a width of ``MOTION_WIDTH_PX`` costs well under a millisecond and
tells the tracker two things: which regions to scan for faces that just moved into view,
and when the whole picture changed (a scene cut), so that it scans everything again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fakeblock.detect.boxes import Box

MOTION_WIDTH_PX = 160
# A pixel of the small copy changed when its grey level moved by more than this (video
# noise and compression flicker stay below it).
CHANGE_THRESHOLD = 18
# More than this share of the picture changed at once: a scene cut or a camera move.
SCENE_CUT_SHARE = 0.6
# Where nothing changed (:func:`region_changed`), the tracker skips at most this many scans
# in a row, of a still track's window and of a still changed region: the cascade would see
# the same picture, and it still looks again at least every third frame.
MAX_RESTING_FRAMES = 2


@dataclass(frozen=True)
class Motion:
    """What changed between two frames: regions in frame pixels, and the share of the picture.

    ``changed_px`` gives, for each region, how many frame pixels in it changed (a region
    is the box around them, so it may be much larger).
    """

    regions: tuple[Box, ...]
    changed_share: float
    changed_px: tuple[int, ...] = ()

    @property
    def scene_cut(self) -> bool:
        """True when so much changed that nothing known about the previous frame still holds."""
        return self.changed_share > SCENE_CUT_SHARE


def small_copy(gray: np.ndarray) -> np.ndarray:
    """The frame at ``MOTION_WIDTH_PX`` wide (never enlarged), blurred against noise."""
    scale = min(1.0, MOTION_WIDTH_PX / gray.shape[1])
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (3, 3), 0)


def _small_area(region: Box, small: np.ndarray, frame_width_px: int, frame_height_px: int) -> tuple[slice, slice]:
    """The rows and columns of a :func:`small_copy` that cover ``region`` (frame pixels)."""
    scale_x, scale_y = small.shape[1] / frame_width_px, small.shape[0] / frame_height_px
    x, y, width, height = region
    left, top = int(x * scale_x), int(y * scale_y)
    return (slice(max(0, top), max(0, top + int(np.ceil(height * scale_y)) + 1)),
            slice(max(0, left), max(0, left + int(np.ceil(width * scale_x)) + 1)))


def region_changed(previous: np.ndarray, current: np.ndarray, region: Box, frame_width_px: int,
                   frame_height_px: int) -> bool:
    """True when a pixel of two :func:`small_copy` images inside ``region`` (frame pixels) changed
    by more than ``CHANGE_THRESHOLD`` (the test :func:`find_motion` applies), or the region holds
    no pixel of them."""
    area = _small_area(region, current, frame_width_px, frame_height_px)
    difference = cv2.absdiff(previous[area], current[area])
    return not difference.size or int(difference.max()) > CHANGE_THRESHOLD


def find_motion(previous: np.ndarray, current: np.ndarray, frame_width_px: int, frame_height_px: int,
                ignore: Sequence[Box] = ()) -> Motion:
    """Changed regions between two :func:`small_copy` images, in frame pixels.

    Areas listed in ``ignore`` (the windows the tracker searches anyway) count towards the
    changed share but yield no region.
    """
    changed: np.ndarray = (cv2.absdiff(previous, current) > CHANGE_THRESHOLD).astype(np.uint8)
    share = float(changed.mean())
    scale_x, scale_y = current.shape[1] / frame_width_px, current.shape[0] / frame_height_px
    for region in ignore:
        changed[_small_area(region, current, frame_width_px, frame_height_px)] = 0
    undilated = changed
    changed = cv2.dilate(changed, np.ones((3, 3), np.uint8), iterations=2)
    count, labels, stats, _centres = cv2.connectedComponentsWithStats(changed, connectivity=8)
    # Changed pixels per region before dilation grew them, in frame pixels.
    changed_counts = np.bincount(labels[undilated > 0], minlength=count) / (scale_x * scale_y)
    regions = sorted(((int(left / scale_x), int(top / scale_y), int(np.ceil(width / scale_x)),
                       int(np.ceil(height / scale_y))), int(changed_counts[label]))
                     for label, (left, top, width, height, _area) in enumerate(stats[1:count], start=1))
    return Motion(tuple(region for region, _ in regions), share, tuple(pixels for _, pixels in regions))

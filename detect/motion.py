"""Where the picture changed since the previous frame, from a small blurred copy of each.

Frame differencing at a width of ``MOTION_WIDTH_PX`` costs well under a millisecond and
tells the tracker two things: which regions to scan for faces that just moved into view,
and when the whole picture changed (a scene cut), so that it scans everything again.

A camera that pans changes every textured pixel, which would make the whole frame one
changed region, too large to scan every frame.  So where much of the picture changed,
:func:`camera_shift` measures how the whole picture moved (phase correlation of the two
small copies), and when that shift explains most of the change, the change is what is
left once the previous frame is moved by it: what moved against the scene, and the strip
the camera brought into view.
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
# Below this share of changed pixels things moved in the picture, not the camera: no shift
# is looked for (a pan over a textured scene changes a third of the picture or more).
CAMERA_MOVE_MIN_SHARE = 0.1
# A shift is the camera's when moving the previous frame by it leaves at most this share
# of the changed pixels changed.
CAMERA_MOVE_EXPLAINED_SHARE = 0.5
# Less than this (small-copy pixels) along an axis is no move along it: the blur spreads it.
MIN_SHIFT_PX = 0.25


@dataclass(frozen=True)
class Motion:
    """What changed between two frames: regions in frame pixels, and the share of the picture.

    ``changed_px`` gives, for each region, how many frame pixels in it changed (a region
    is the box around them, so it may be much larger).
    """

    regions: tuple[Box, ...]
    changed_share: float
    changed_px: tuple[int, ...] = ()
    camera_shift_px: tuple[float, float] = (0.0, 0.0)

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


def changed_pixels(previous: np.ndarray, current: np.ndarray, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """1 where a pixel of two :func:`small_copy` images changed by more than ``CHANGE_THRESHOLD``,
    after moving ``previous`` by ``shift`` (small-copy pixels).  The strips that shift
    brought into view have nothing to compare with: they count as unchanged here, and the
    tracker scans them as :func:`revealed_edges`."""
    if shift == (0.0, 0.0):
        return (cv2.absdiff(previous, current) > CHANGE_THRESHOLD).astype(np.uint8)
    height, width = current.shape[:2]
    translation = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]], dtype=np.float32)
    moved = cv2.warpAffine(previous, translation, (width, height),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    changed = (cv2.absdiff(moved, current) > CHANGE_THRESHOLD).astype(np.uint8)
    band_x, band_y = int(np.ceil(abs(shift[0]))) + 1, int(np.ceil(abs(shift[1]))) + 1
    if shift[0]:
        (changed[:, :band_x] if shift[0] > 0 else changed[:, max(0, width - band_x):])[...] = 0
    if shift[1]:
        (changed[:band_y] if shift[1] > 0 else changed[max(0, height - band_y):])[...] = 0
    return changed


def revealed_edges(motion: Motion, frame_width_px: int, frame_height_px: int) -> list[Box]:
    """The strips along the frame's edges that the camera's move brought into view (frame
    pixels), each one small-copy pixel wider than the move, for it is blurred across."""
    shift_x, shift_y = motion.camera_shift_px
    pixel_px = frame_width_px / MOTION_WIDTH_PX if frame_width_px > MOTION_WIDTH_PX else 1.0
    edges: list[Box] = []
    if shift_x:
        width = min(frame_width_px, int(np.ceil(abs(shift_x) + 2 * pixel_px)))
        edges.append((0 if shift_x > 0 else frame_width_px - width, 0, width, frame_height_px))
    if shift_y:
        height = min(frame_height_px, int(np.ceil(abs(shift_y) + 2 * pixel_px)))
        edges.append((0, 0 if shift_y > 0 else frame_height_px - height, frame_width_px, height))
    return edges


def camera_shift(previous: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """How far the whole picture moved between two :func:`small_copy` images (small-copy
    pixels), or ``(0, 0)`` when it did not: too little changed for a camera move, or moving
    by the best shift leaves more than ``CAMERA_MOVE_EXPLAINED_SHARE`` of the change (the
    picture changed, it did not move: a cut, or a large object moving)."""
    share = float(changed_pixels(previous, current).mean())
    if share < CAMERA_MOVE_MIN_SHARE:
        return 0.0, 0.0
    (shift_x, shift_y), _response = cv2.phaseCorrelate(previous.astype(np.float32), current.astype(np.float32))
    if not (np.isfinite(shift_x) and np.isfinite(shift_y)):
        return 0.0, 0.0
    shift_x, shift_y = (0.0 if abs(value) < MIN_SHIFT_PX else float(value) for value in (shift_x, shift_y))
    if (shift_x, shift_y) == (0.0, 0.0):
        return 0.0, 0.0
    left = float(changed_pixels(previous, current, (shift_x, shift_y)).mean())
    return (float(shift_x), float(shift_y)) if left <= CAMERA_MOVE_EXPLAINED_SHARE * share else (0.0, 0.0)


def find_motion(previous: np.ndarray, current: np.ndarray, frame_width_px: int, frame_height_px: int,
                ignore: Sequence[Box] = ()) -> Motion:
    """Changed regions between two :func:`small_copy` images, in frame pixels, with the
    camera's move (:func:`camera_shift`) taken out.

    Areas listed in ``ignore`` (the windows the tracker searches anyway) count towards the
    changed share but yield no region.
    """
    shift = camera_shift(previous, current)
    changed = changed_pixels(previous, current, shift)
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
    return Motion(tuple(region for region, _ in regions), share, tuple(pixels for _, pixels in regions),
                  (shift[0] / scale_x, shift[1] / scale_y))

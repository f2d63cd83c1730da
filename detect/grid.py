"""Scan parts of a frame exactly as the full-frame scan samples them.

OpenCV's ``detectMultiScale`` builds a pyramid of the whole image: for each scale factor
``f`` (the powers of ``scaleFactor`` whose window is at least ``minSize``) a copy
``round(width / f)`` x ``round(height / f)`` made with bit-exact linear interpolation.
On each copy it slides its window (24 px for the stock face cascade) in steps of one
pixel where ``f >= 2`` and two below, collects every position the cascade accepts (the
*raw candidates*), and groups them all with ``groupRectangles(minNeighbors, 0.2)``.

A crop of the frame scanned on its own resizes differently and starts its grid
elsewhere, so it finds different candidates.  :func:`grid_scan` instead cuts each
job's region out of the very pyramid level the full scan uses, at the full scan's grid
phase, so its raw candidates are the full scan's raw candidates there; grouping the union
of a frame's candidates reproduces the full scan's boxes wherever the jobs cover all the
candidates of a face.

The cascade only scans a whole image, at its own step: a level copy at ``f >= 2`` is
scanned in steps of one pixel by scanning a twice-enlarged (nearest-neighbour) crop at
factor exactly 2, which the cascade shrinks back to the same pixels; below 2 the crop
is scanned at factor 1, its origin on an even pixel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import combinations

import cv2
import numpy as np

from fakeblock.detect.boxes import Box, clip, overlap_of_smaller
from fakeblock.detect.scan import ScanJob, Scanned, scaled_copy

# (left, top, right, bottom) on a level copy.
Crop = tuple[int, int, int, int]
# groupRectangles' eps in detectMultiScale (its GROUP_EPS).
GROUP_EPS = 0.2
# Scale factors from this one up are scanned in steps of one pixel of the level copy, below in two.
FINE_STEP_FACTOR = 2.0
# detectMultiScale splits the rows into one stripe per this many pixels of its first level's width.
STRIPE_WIDTH_PX = 32
# A crop is scanned from this many steps left of where it is wanted: the cascade skips the
# position after one its first stage rejects, so a scan starting elsewhere in a row may
# visit other positions until the two meet again (they nearly always meet within a few;
# on 3,000 sampled crops of two clips, 2 of 16,500 candidates differed with no margin).
CHAIN_MARGIN_STEPS = 2
# A cluster of raw candidates with at least this share of the candidates a face needs is a
# near miss; one that overlaps a face this much (of the smaller) is part of that face.
NEAR_MISS_SHARE = 0.5
NEAR_MISS_OVERLAP = 0.5


@dataclass(frozen=True)
class Level:
    """One level of the full scan's pyramid: its scale factor (OpenCV's float), its copy's size,
    and its window's size in pixels of the scanned image."""

    factor: float
    width_px: int
    height_px: int
    window_px: tuple[int, int]
    # Windows start only on the rows above this one (see _rows_scanned).
    rows_px: int = 0

    @property
    def step_px(self) -> int:
        """The window's step on the level copy."""
        return 1 if self.factor >= FINE_STEP_FACTOR else 2


def _round(value: np.float32) -> int:
    """OpenCV's cvRound of a float: to the nearest integer, halves to even."""
    return int(np.rint(value))


def pyramid(width_px: int, height_px: int, window_px: tuple[int, int], scale_factor: float,
            min_size_px: int) -> list[Level]:
    """The levels ``detectMultiScale`` scans on a ``width_px`` x ``height_px`` image with
    ``minSize`` ``min_size_px`` and no largest size, smallest factor first."""
    levels: list[Level] = []
    factor = 1.0  # OpenCV multiplies a double and scans its float
    while True:
        single = np.float32(factor)
        window = (_round(np.float32(window_px[0]) * single), _round(np.float32(window_px[1]) * single))
        if window[0] > width_px or window[1] > height_px:
            break
        if window[0] >= min_size_px and window[1] >= min_size_px:
            levels.append(Level(float(single), _round(np.float32(width_px) / single),
                                _round(np.float32(height_px) / single), window))
        factor *= scale_factor
    if not levels:
        return levels
    stripes = math.ceil((levels[0].width_px + 1 - window_px[0]) / STRIPE_WIDTH_PX)
    return [replace(level, rows_px=_rows_scanned(level.height_px + 1 - window_px[1], level.step_px, stripes))
            for level in levels]


def _rows_scanned(positions: int, step_px: int, stripes: int) -> int:
    """Of ``positions`` rows where a window fits, how many from the top OpenCV's stripes reach:
    each stripe is a whole number of steps, so at a step of 2 the last row may be left out."""
    stripe_px = max((positions // step_px + stripes - 1) // stripes, 1) * step_px
    return min(stripes * stripe_px, positions)


def level_copy(image: np.ndarray, level: Level) -> np.ndarray:
    """The full scan's copy of ``image`` at ``level``."""
    return cv2.resize(image, (level.width_px, level.height_px), interpolation=cv2.INTER_LINEAR_EXACT)


def level_crop(region: tuple[float, float, float, float], level: Level) -> Crop:
    """``(left, top, right, bottom)`` on the level copy holding ``region`` (``(x, y, width,
    height)`` in scanned-image pixels), its origin on the window's grid."""
    factor, step = level.factor, level.step_px
    left = max(0, math.floor(region[0] / factor) // step * step)
    top = max(0, math.floor(region[1] / factor) // step * step)
    right = min(level.width_px, math.ceil((region[0] + region[2]) / factor))
    bottom = min(level.height_px, math.ceil((region[1] + region[3]) / factor))
    return left, top, right, bottom


def window_positions(crop: Crop, window_px: tuple[int, int]) -> int:
    """How many places the window fits in ``crop`` (at a step of one pixel): the cost of scanning it."""
    return max(0, crop[2] - crop[0] + 1 - window_px[0]) * max(0, crop[3] - crop[1] + 1 - window_px[1])


def merge_crops(crops: Iterable[Crop], window_px: tuple[int, int]) -> list[Crop]:
    """One level's crops, each pair joined into the crop around both wherever that crop holds
    no more window positions than the two apart (overlapping jobs scan their overlap once)."""
    merged = sorted(set(crops))
    joined = True
    while joined:
        joined = False
        for first, second in combinations(merged, 2):
            both = (min(first[0], second[0]), min(first[1], second[1]), max(first[2], second[2]),
                    max(first[3], second[3]))
            if window_positions(both, window_px) <= (window_positions(first, window_px)
                                                     + window_positions(second, window_px)):
                merged = sorted({crop for crop in merged if crop not in (first, second)} | {both})
                joined = True
                break
    return merged


def level_candidates(cascade: cv2.CascadeClassifier, copy: np.ndarray, level: Level,
                     crop: Crop, window_px: tuple[int, int]) -> list[tuple[int, int]]:
    """Window positions ``(x, y)`` on the level copy inside ``crop`` that the cascade accepts,
    as the full scan of the whole copy finds them (``window_px``: the cascade's own window)."""
    left, top, right, bottom = crop
    step = level.step_px
    start = max(0, left - CHAIN_MARGIN_STEPS * step)
    patch = copy[top:bottom, start:right]
    if patch.shape[1] < window_px[0] or patch.shape[0] < window_px[1]:
        return []
    if step == 2 and (patch.shape[0] + 1 - window_px[1]) % 2:
        # One more row lets the stripes reach the last row (the added one starts no window of the grid).
        patch = copy[top:bottom + 1, start:right] if bottom < copy.shape[0] else np.vstack([patch, patch[-1:]])
    enlarge = 2 if step == 1 else 1
    if enlarge > 1:
        patch = cv2.resize(patch, (patch.shape[1] * enlarge, patch.shape[0] * enlarge), interpolation=cv2.INTER_NEAREST)
    size = (window_px[0] * enlarge, window_px[1] * enlarge)
    found = cascade.detectMultiScale(patch, scaleFactor=2.0, minNeighbors=0, minSize=size, maxSize=size)
    positions = [(start + int(x) // enlarge, top + int(y) // enlarge)
                 for x, y, _width, _height in np.asarray(found).reshape(-1, 4)]
    return [(x, y) for x, y in positions if x >= left and y < level.rows_px]


def candidate_box(position: tuple[int, int], level: Level) -> Box:
    """A raw candidate as the full scan groups it, in scanned-image pixels (possibly reaching
    past the image's edge: the full scan cuts boxes to the image only after grouping)."""
    factor = np.float32(level.factor)
    return (_round(np.float32(position[0]) * factor), _round(np.float32(position[1]) * factor), *level.window_px)


def group(boxes: Iterable[Box], min_neighbors: int) -> list[Box]:
    """``detectMultiScale``'s grouping of raw candidates."""
    boxes = sorted(boxes)
    if min_neighbors <= 0 or not boxes:
        return boxes
    grouped, _weights = cv2.groupRectangles([list(box) for box in boxes], min_neighbors, GROUP_EPS)
    return [(int(x), int(y), int(w), int(h)) for x, y, w, h in np.asarray(grouped).reshape(-1, 4)]


def _shares(tasks: list[tuple[int, Crop]], count: int, window_px: tuple[int, int]) -> list[list[tuple[int, Crop]]]:
    """``tasks`` dealt into at most ``count`` shares of even cost (largest first, to the lightest share)."""
    shares: list[list[tuple[int, Crop]]] = [[] for _ in range(max(1, min(count, len(tasks))))]
    loads = [0] * len(shares)
    for task in sorted(tasks, key=lambda task: (-window_positions(task[1], window_px), task)):
        lightest = min(range(len(shares)), key=lambda index: (loads[index], index))
        shares[lightest].append(task)
        loads[lightest] += window_positions(task[1], window_px)
    return shares


def grid_scan(gray: np.ndarray, cascades: Sequence[cv2.CascadeClassifier], jobs: list[ScanJob], scale: float,
              scale_factor: float, min_size_px: int, min_neighbors: int,
              pool: ThreadPoolExecutor | None = None) -> list[Box]:
    """The grouped faces of one frame's ``jobs``, as boxes in frame pixels.

    The full scan (``detect.core.find_faces``) runs on the frame scaled by ``scale`` for
    faces from ``min_size_px``; each job scans the levels of that scan whose window lies
    within its size range, over its region (widened by its reach at each level's size).
    Overlapping crops of one level are scanned together (:func:`merge_crops`), and a raw
    candidate two jobs share counts once.

    With a ``pool`` the crops are shared out over ``len(cascades)`` threads (the cascade calls
    let the interpreter go), one cascade each: a frame's scans are many small calls, which
    OpenCV's own threads hardly split.  The result does not depend on the sharing.
    """
    candidates, image = _candidates(gray, cascades, jobs, scale, scale_factor, min_size_px, pool)
    return _in_frame(group(candidates, min_neighbors), image, scale)


def near_members(min_neighbors: int) -> int:
    """Raw candidates a cluster needs to be a *near miss*: half of what a face needs (a face's
    cluster needs more than ``min_neighbors``), at least 2 (a lone candidate is noise)."""
    return max(2, math.ceil((min_neighbors + 1) * NEAR_MISS_SHARE))


def grid_scan_near(gray: np.ndarray, cascades: Sequence[cv2.CascadeClassifier], jobs: list[ScanJob], scale: float,
                   scale_factor: float, min_size_px: int, min_neighbors: int,
                   pool: ThreadPoolExecutor | None = None) -> Scanned:
    """:func:`grid_scan`'s faces, and its near misses: clusters of raw candidates with at least
    :func:`near_members` of them that are no face and overlap none (frame pixels).

    A face the cascade is unsure of (small, blurred, half turned) keeps such a cluster from
    frame to frame while the full scan finds it only in some frames, as its pixels shift a
    little: the tracker watches those places (``detect.tracking``)."""
    candidates, image = _candidates(gray, cascades, jobs, scale, scale_factor, min_size_px, pool)
    faces = _in_frame(group(candidates, min_neighbors), image, scale)
    near = [box for box in _in_frame(group(candidates, near_members(min_neighbors) - 1), image, scale)
            if all(overlap_of_smaller(box, face) < NEAR_MISS_OVERLAP for face in faces)]
    return Scanned(faces, near)


def _candidates(gray: np.ndarray, cascades: Sequence[cv2.CascadeClassifier], jobs: list[ScanJob], scale: float,
                scale_factor: float, min_size_px: int,
                pool: ThreadPoolExecutor | None) -> tuple[list[Box], np.ndarray]:
    """The raw candidates of ``jobs`` (boxes on the scanned copy, see :func:`grid_scan`) and that copy."""
    image = scaled_copy(gray, scale)  # the copy the full scan runs on (detect.scan.run_job)
    width_px, height_px = cascades[0].getOriginalWindowSize()
    window_px = (int(width_px), int(height_px))
    levels = pyramid(image.shape[1], image.shape[0], window_px, scale_factor, max(1, round(min_size_px * scale)))
    crops: dict[int, list[Crop]] = {}
    for job in jobs:
        smallest_px = round(job.min_size_px * scale)
        largest_px = math.inf if job.max_size_px is None else round(job.max_size_px * scale)
        region = (job.region[0] * scale, job.region[1] * scale, job.region[2] * scale, job.region[3] * scale)
        for index, level in enumerate(levels):
            if smallest_px <= min(level.window_px) <= largest_px:
                reach_px = job.reach_share * min(level.window_px)  # the job's reach at this face size
                reached = (region[0] - reach_px, region[1] - reach_px, region[2] + 2 * reach_px,
                           region[3] + 2 * reach_px)
                crops.setdefault(index, []).append(level_crop(reached, level))
    tasks = [(index, crop) for index, level_crops in sorted(crops.items())
             for crop in merge_crops(level_crops, window_px)]
    copies = {index: level_copy(image, levels[index]) for index in crops}

    def scan_share(cascade: cv2.CascadeClassifier, share: list[tuple[int, Crop]]) -> set[tuple[int, int, int]]:
        return {(index, x, y) for index, crop in share
                for x, y in level_candidates(cascade, copies[index], levels[index], crop, window_px)}

    shares = _shares(tasks, len(cascades) if pool is not None else 1, window_px)
    if pool is None or len(shares) == 1:
        found = scan_share(cascades[0], shares[0])
    else:
        # Each thread has a cascade of its own: a cascade keeps its pyramid while it scans.
        found = set().union(*pool.map(scan_share, cascades, shares))
    return [candidate_box((x, y), levels[index]) for index, x, y in found], image


def _in_frame(boxes: list[Box], image: np.ndarray, scale: float) -> list[Box]:
    """Grouped boxes on the scanned copy, cut to it, in frame pixels."""
    boxes = [box for box in (clip(box, image.shape[1], image.shape[0]) for box in boxes) if box is not None]
    if scale < 1:
        boxes = [(round(x / scale), round(y / scale), round(w / scale), round(h / scale)) for x, y, w, h in boxes]
    return boxes

"""Scans: where in a frame the cascade looks, at which face sizes and at which image scale.

A :class:`ScanJob` is one call of the cascade on part of a frame.  The full-frame scan
(the reference, and what ``--tracking off`` runs on every frame) is one job; the tracker
runs small jobs around known faces, over regions that changed, and a share of the
*coverage cycle*: the whole frame cut into tiles over a pyramid of scales, dealt out
over ``scan_cycle_frames`` frames so that every place and every face size is scanned once
per cycle at an even cost per frame.

Why the pyramid: the cascade's window is 24 px and a 48-px face never needed full
resolution to be found at 96 px and more.  Level ``n`` of the pyramid scans faces of
``min_size_px * 2**n`` to ``LEVEL_SPAN`` times that on a copy scaled by ``2**-n``, so every
level costs about a quarter of the one below it.  A tile extends ``LEVEL_SPAN`` times its
level's smallest face beyond its cell to the right and below, so a face of its level
whose top-left corner lies in the cell lies wholly in the tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fakeblock.detect.boxes import Box, clip, contains, grow

# Each level scans faces up to this many times its smallest: more than the 2x step
# between levels, so a face near a level boundary is scanned with all its neighbours
# (the cascade's minNeighbors counts hits across nearby sizes) on one level or the other.
LEVEL_SPAN = 2.6
# Each level's copy is about this much smaller than the one below it (exactly: the power
# of the cascade's scale factor nearest to it, see :func:`level_step`).
LEVEL_STEP = 2.0
# A coverage tile's cell is this many times the tile's overlap: larger cells waste less
# on overlap, smaller ones share the cost out more evenly.
CELL_PER_OVERLAP = 2
# A change is scanned for faces up to this many times its longer side, each looked for this
# share of its own side beyond the change (see :func:`change_job`).
CHANGE_SIZE_SPAN = 2
CHANGE_REACH_SHARE = 0.5


@dataclass(frozen=True)
class ScanJob:
    """Run the cascade over ``region`` (frame pixels) for faces of ``min_size_px`` to
    ``max_size_px`` (None: no limit), on a copy of the region scaled by ``scale``
    (:func:`run_job`; :func:`fakeblock.detect.grid.grid_scan` scans the full scan's own
    pyramid levels instead, and ``scale`` only measures the job's cost).

    With a ``reach_share``, each face size is looked for in the region widened by that
    share of the size on every side: a job around a change holds every face of which the
    change covers a part, whatever its size (see :meth:`holds`).
    """

    region: Box
    min_size_px: int
    max_size_px: int | None
    scale: float
    reach_share: float = 0.0

    @property
    def cost(self) -> float:
        """Pixels the cascade reads: a measure of the job's time."""
        return self.region[2] * self.region[3] * self.scale * self.scale

    def holds(self, box: Box) -> bool:
        """True when a face with this box is within the job's sizes and wholly in the area it scans for that size."""
        size_px = min(box[2], box[3])
        if not self.min_size_px <= size_px <= (self.max_size_px or size_px):
            return False
        return contains(grow(self.region, math.ceil(self.reach_share * size_px)), box)


@dataclass(frozen=True)
class Scanned:
    """What a frame's scan jobs found: faces, and near misses (places the cascade almost took
    for a face, see :func:`fakeblock.detect.grid.grid_scan_near`), as boxes in frame pixels."""

    faces: list[Box]
    near: list[Box]


def level_step(scale_factor: float) -> float:
    """The power of ``scale_factor`` nearest ``LEVEL_STEP``.

    Then a level tries exactly the face sizes the full-frame scan tries (the cascade
    scales its window by powers of ``scale_factor``), so the tracker finds what the
    reference finds rather than faces a few per cent larger or smaller.
    """
    return scale_factor ** max(1, round(math.log(LEVEL_STEP) / math.log(scale_factor)))


def aligned_scale(scale: float, wanted: float, scale_factor: float) -> float:
    """``scale`` divided by the power of ``scale_factor`` nearest ``scale / wanted`` (never above ``scale``)."""
    if wanted >= scale:
        return scale
    return scale / scale_factor ** round(math.log(scale / wanted) / math.log(scale_factor))


def full_frame_job(width_px: int, height_px: int, min_size_px: int, scale: float) -> ScanJob:
    """The reference: the whole frame, every face size from ``min_size_px``."""
    return ScanJob((0, 0, width_px, height_px), min_size_px, None, scale)


def scaled_copy(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` shrunk by ``scale`` (area interpolation), or itself at 1: what every scan runs on."""
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def run_job(gray: np.ndarray, cascade: cv2.CascadeClassifier, job: ScanJob, scale_factor: float,
            min_neighbors: int) -> list[Box]:
    """The faces one job finds, as boxes in frame pixels (a job's reach widens its region by
    the reach at its largest size, or its region's longer side: every size is looked for there)."""
    x, y, width, height = job.region
    if job.reach_share:
        largest_px = job.max_size_px or max(width, height)
        grown = clip(grow(job.region, math.ceil(job.reach_share * largest_px)), gray.shape[1], gray.shape[0])
        if grown is None:
            return []
        x, y, width, height = grown
    image = scaled_copy(gray[y:y + height, x:x + width], job.scale)
    min_px = max(1, round(job.min_size_px * job.scale))
    if min(image.shape[:2]) < min_px:
        return []
    max_px = 0  # OpenCV's default maxSize, Size(0, 0): no upper limit
    if job.max_size_px is not None:
        max_px = max(min_px, round(job.max_size_px * job.scale))
    found = cascade.detectMultiScale(image, scaleFactor=scale_factor, minNeighbors=min_neighbors,
                                     minSize=(min_px, min_px), maxSize=(max_px, max_px))
    return [(x + round(bx / job.scale), y + round(by / job.scale), round(bw / job.scale), round(bh / job.scale))
            for bx, by, bw, bh in np.asarray(found).reshape(-1, 4)]


def _levels(min_size_px: int, scale: float, step: float, largest_px: int):
    """``(smallest face, largest face, copy scale)`` of each pyramid level, smallest faces first.

    Each level spans ``LEVEL_SPAN`` times its smallest face; the last level, the first
    whose span reaches ``largest_px`` (or whose copy would be under a pixel), has no
    largest face.
    """
    level_min_px, level_scale = float(min_size_px), scale
    while True:
        level_max_px = int(np.ceil(level_min_px * LEVEL_SPAN))
        if level_max_px >= largest_px or level_scale * level_min_px < 1:
            yield round(level_min_px), None, level_scale
            return
        yield round(level_min_px), level_max_px, level_scale
        level_min_px, level_scale = level_min_px * step, level_scale / step


def pyramid_jobs(width_px: int, height_px: int, min_size_px: int, scale: float, step: float) -> list[ScanJob]:
    """Every tile of every pyramid level (each ``step`` times smaller): together they scan every
    place at every face size."""
    jobs: list[ScanJob] = []
    for level_min_px, overlap_px, level_scale in _levels(min_size_px, scale, step, min(width_px, height_px)):
        if overlap_px is None:
            jobs.append(ScanJob((0, 0, width_px, height_px), level_min_px, None, level_scale))
            continue
        cell_px = CELL_PER_OVERLAP * overlap_px
        for top in range(0, height_px, cell_px):
            for left in range(0, width_px, cell_px):
                tile = (left, top, min(width_px, left + cell_px + overlap_px) - left,
                        min(height_px, top + cell_px + overlap_px) - top)
                jobs.append(ScanJob(tile, level_min_px, overlap_px, level_scale))
    return jobs


def coverage_cycle(width_px: int, height_px: int, min_size_px: int, scale: float, step: float,
                   cycle_frames: int) -> list[list[ScanJob]]:
    """The pyramid's jobs dealt out over ``cycle_frames`` frames, evening the cost per frame.

    Largest job first into the frame with the least work so far (ties: the earliest), so
    the plan depends only on the frame size and the settings.
    """
    cycle: list[list[ScanJob]] = [[] for _ in range(max(1, cycle_frames))]
    loads = [0.0] * len(cycle)
    for job in sorted(pyramid_jobs(width_px, height_px, min_size_px, scale, step), key=lambda j: (-j.cost, j.region)):
        lightest = min(range(len(cycle)), key=lambda index: (loads[index], index))
        cycle[lightest].append(job)
        loads[lightest] += job.cost
    return cycle


def edge_job(edge: Box, min_size_px: int, frame_width_px: int, frame_height_px: int, scale: float) -> ScanJob:
    """The scan of a strip a camera move brought into view: every face that lies partly in it.

    A face coming into view with the scene is whole only once its last part is inside, and
    the rest of it was in view before, unchanged once the camera's move is taken out; so
    the strip is scanned for every size, each reaching its whole side beyond it.
    """
    return ScanJob(edge, min_size_px, max(min_size_px, min(frame_width_px, frame_height_px)), scale, 1.0)


def change_job(region: Box, min_size_px: int, scale: float) -> ScanJob:
    """The scan of a changed ``region``: every face of which the change covers at least half the
    width or height (so up to twice the region's longer side), wherever such a face lies.

    A face that appeared or moved changes most of its box, so the change covers that much
    of it; such a face reaches at most half its side beyond the change, hence the reach.
    """
    return ScanJob(region, min_size_px, max(min_size_px, CHANGE_SIZE_SPAN * max(region[2], region[3])), scale,
                   CHANGE_REACH_SHARE)

"""Regions of a stream that changed lately: which to scan for new faces, and when.

Frame differencing (:mod:`fakeblock.detect.motion`) says where the picture changed; this
module turns that into scan jobs (:func:`fakeblock.detect.scan.change_job`: every face the
change could be part of).  Two rules decide when:

- **Every change is scanned within ``MAX_RESTING_FRAMES`` frames of happening**, whatever
  else goes on in the frame: a face that moved or appeared, and that the full-frame scan
  finds in three consecutive frames, is found by the third of them.  A change waits as
  *pending* until a scan holds it; at its deadline it is scanned on its own.
- Beyond that, a region where a face's worth of pixels changed is *hot*: scanned at once,
  budget permitting, for ``HOT_FRAMES`` scans (a face that just came into view is usually
  found in its first frame).  A region that had its scans goes *cold*: change there (a
  moving background, flickering lights, a waving hand) is then scanned only by its
  deadline, so it costs a third of a full scan of its area, not all of it, unless the
  picture there stops looking as it did (something new: hot again).

One hot scan is enough: a face the cascade is unsure of, which the full scan finds in some
frames and not others, leaves a *near miss* that the tracker then scans every frame
(:mod:`fakeblock.detect.tracking`).  Measured on the stress corpus with ten hot scans, the
second to tenth found no face that no track or other scan held on any of its six generated
clips, and on the 720p montage only false detections on lights behind a person, for 72 %
of the hot scans' area.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fakeblock.detect.boxes import Box, clip, contains, overlap_of_smaller
from fakeblock.detect.looks import signature, similarity
from fakeblock.detect.motion import MAX_RESTING_FRAMES, Motion
from fakeblock.detect.scan import ScanJob, change_job

HOT_FRAMES = 1
# Fewer changed pixels than this share of the smallest face's area is noise.
MIN_CHANGE_SHARE = 0.25
COLD_FRAMES = 30
# A changed region that mostly lies in a hot (or cold) one is the same region.
SAME_REGION_OVERLAP = 0.5
# A cold region whose picture correlates less than this with how it looked when it went
# cold has something new in it, and warms up again (it would be scanned by its changes'
# deadlines anyway: this only gives it the hot scans sooner).
SAME_LOOK_SIMILARITY = 0.5
# The area of hot regions scanned per frame, as a share of the frame's area; when more is
# hot, the regions take turns.
MOTION_BUDGET_SHARE = 0.3


@dataclass
class HotRegion:
    """A region that changed lately: scans it still gets, the frame it was last scanned, scans so far."""

    scans_left: int
    scanned_at: int = -1
    scans: int = 0
    # Frames in a row its scan was skipped, nothing in it having changed.
    rested: int = 0


@dataclass(frozen=True)
class ColdRegion:
    """A region scanned often lately to no avail: frames it stays cold, and how it looked then."""

    frames_left: int
    look: np.ndarray | None


@dataclass
class PendingChange:
    """A change no scan has held yet, and the frame by which one must."""

    region: Box
    due: int


class ChangedRegions:
    """The pending changes and the hot and cold regions of one stream."""

    def __init__(self, min_size_px: int, scale: float):
        self.min_size_px, self.scale = min_size_px, scale
        self.hot: dict[Box, HotRegion] = {}
        self.cold: dict[Box, ColdRegion] = {}
        self.pending: list[PendingChange] = []

    def clear(self) -> None:
        """Forget every region (after a scene cut, whose full scan holds every change)."""
        self.hot, self.cold, self.pending = {}, {}, []

    def _pend(self, region: Box, due: int) -> None:
        """Add a change; one that mostly overlaps a pending change joins it (the box around both,
        the earlier deadline), so a change that goes on frame after frame is one pending change."""
        for change in self.pending:
            if overlap_of_smaller(region, change.region) >= SAME_REGION_OVERLAP:
                left, top = min(region[0], change.region[0]), min(region[1], change.region[1])
                right = max(region[0] + region[2], change.region[0] + change.region[2])
                bottom = max(region[1] + region[3], change.region[1] + change.region[3])
                change.region, change.due = (left, top, right - left, bottom - top), min(change.due, due)
                return
        self.pending.append(PendingChange(region, due))

    def heat(self, gray: np.ndarray, motion: Motion, width_px: int, height_px: int, frame_index: int) -> None:
        """Add this frame's changes, pending until scanned, and age the hot and cold regions.

        Specks (fewer changed pixels than ``MIN_CHANGE_SHARE`` of the smallest face: noise)
        are ignored.  Every other change is pending, due ``MAX_RESTING_FRAMES`` frames on.
        Outside the cold regions it also heats its region: where at least a smallest face's
        worth changed, for ``HOT_FRAMES`` scans, a smaller change for one.  Of a new region
        and a hot one that mostly overlap, the larger stays, so hot regions never pile up.
        A region that has had its scans goes cold for ``COLD_FRAMES`` frames, unless the
        picture there stops looking as it did (something new).
        """
        min_size_px = self.min_size_px
        face_area_px = min_size_px * min_size_px
        self.cold = {region: ColdRegion(cold.frames_left - 1, cold.look) for region, cold in self.cold.items()
                     if cold.frames_left > 1 and similarity(cold.look, signature(gray, region)) >= SAME_LOOK_SIMILARITY}
        for region, changed_px in zip(motion.regions, motion.changed_px, strict=True):
            inside = clip(region, width_px, height_px)
            if inside is None or changed_px < MIN_CHANGE_SHARE * face_area_px:
                continue
            self._pend(inside, frame_index + MAX_RESTING_FRAMES)
            if any(overlap_of_smaller(inside, cold) >= SAME_REGION_OVERLAP for cold in self.cold):
                continue
            area_px = inside[2] * inside[3]
            if any(overlap_of_smaller(inside, other) >= SAME_REGION_OVERLAP and other[2] * other[3] >= area_px
                   for other in self.hot):
                continue  # a hot region at least as large holds most of it
            self.hot = {other: entry for other, entry in self.hot.items()
                        if overlap_of_smaller(inside, other) < SAME_REGION_OVERLAP}
            self.hot[inside] = HotRegion(HOT_FRAMES if changed_px >= face_area_px else 1)

    def jobs(self, gray: np.ndarray, width_px: int, height_px: int, frame_index: int,
             changed: Callable[[Box], bool] = lambda region: True) -> list[ScanJob]:
        """Scan the hot regions scanned longest ago first, until this frame's budget is spent,
        then every pending change that is due and that none of them held.

        The first hot region always goes, so under any load every hot region is scanned in
        turn; so does every region not scanned yet, since the full-frame scan would find a
        face there in the frame it appears.  A region scanned in the previous frame where
        nothing ``changed`` since rests instead, as a still track does (its scan would see
        the same picture), at most ``MAX_RESTING_FRAMES`` frames in a row; a rest uses up a
        scan.
        """
        budget_px = MOTION_BUDGET_SHARE * width_px * height_px
        scanned: list[Box] = []
        for region, entry in sorted(self.hot.items(), key=lambda item: (item[1].scanned_at, -item[0][2] * item[0][3],
                                                                       item[0])):
            if (entry.scans and entry.scanned_at == frame_index - 1 - entry.rested
                    and entry.rested < MAX_RESTING_FRAMES and not changed(region)):
                entry.rested, entry.scans_left = entry.rested + 1, entry.scans_left - 1
                continue
            entry.rested = 0
            area_px = region[2] * region[3]
            if scanned and area_px > budget_px and entry.scans:
                continue
            budget_px -= area_px
            entry.scanned_at, entry.scans, entry.scans_left = frame_index, entry.scans + 1, entry.scans_left - 1
            scanned.append(region)
        for region, entry in list(self.hot.items()):
            if entry.scans_left <= 0:
                del self.hot[region]
                if entry.scans >= HOT_FRAMES:
                    self.cold[region] = ColdRegion(COLD_FRAMES, signature(gray, region))
        waiting = []
        for change in self.pending:
            if any(contains(region, change.region) for region in scanned):
                continue  # held by a hot region's scan
            if change.due <= frame_index:
                scanned.append(change.region)
            else:
                waiting.append(change)
        self.pending = waiting
        return [change_job(region, self.min_size_px, self.scale) for region in scanned]

"""Follow faces through a stream: look where faces were and where the picture changed.

A :class:`FaceTracker` is fed one grey frame at a time.  For each frame it decides which
:class:`~fakeblock.detect.scan.ScanJob` to run, runs them through the ``find`` function
it was given (the Haar cascade in the stage, anything in tests), and matches what they
found to its tracks:

- every track is looked for in a window around its last box, at sizes bracketed around
  its last size, on a copy scaled so the face is no larger than the cascade needs;
- regions that changed since the previous frame (outside those windows) are scanned for
  every face size that fits, within a budget per frame;
- one share of the coverage cycle is scanned, so every place and size of the frame is
  scanned at least once every ``scan_cycle_frames`` frames: a face that appears without
  any motion is found within that many frames;
- a scene cut (most of the picture changed) ends every track and scans the whole frame.

Found boxes that overlap are merged (one box per face).  A box continues a track when it
overlaps the track's box and looks like the track's face (normalised correlation of small
grey copies); otherwise it starts a new track, so a new face where a tracked one was gets
a new id.  A track not found in a frame keeps its box for up to ``MAX_COAST_FRAMES``
frames while the pixels there still look like its face (the cascade misses faces now and
then), and ends after ``MAX_MISSED_FRAMES`` frames without a detection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from fakeblock.detect.boxes import Box, clip, grow, iou, one_box_per_face, overlap_of_smaller
from fakeblock.detect.motion import Motion, find_motion, small_copy
from fakeblock.detect.scan import ScanJob, aligned_scale, coverage_cycle, full_frame_job, level_step, region_jobs

SIGNATURE_SIZE_PX = 16
# A window reaches this share of the face's width beyond its box on every side.
WINDOW_MARGIN = 0.35
# A tracked face is looked for from its last width divided by this to its width times this.
SIZE_BRACKET = 1.25
# A window is scanned on a copy where the smallest size looked for is this many pixels:
# the cascade's own window is 24 px, and a known face needs no more detail to be found again.
WINDOW_FACE_PX = 48
MATCH_IOU = 0.3
# Correlation between a track's face in one frame and a box in the next below which they
# show different things: the face is gone or was replaced (a face that moves or talks
# stays far above it).
CONTINUITY_SIMILARITY = 0.5
# Correlation with the face as last found above which a track not found keeps its box.
SAME_FACE_SIMILARITY = 0.6
# Only a track found in at least this many frames, and this share of the frames since it
# began, keeps its box when not found: a real face is found nearly every frame, while a
# false detection on a textured background comes and goes.
MIN_HITS_TO_COAST = 3
MIN_HIT_SHARE_TO_COAST = 0.7
MAX_COAST_FRAMES = 15
MAX_MISSED_FRAMES = 15
# The area of hot regions scanned per frame, as a share of the frame's area; when more is
# hot, the regions take turns.
MOTION_BUDGET_SHARE = 0.3
MAX_TRACKS = 64
# A region that changed is scanned in this many frames from then on: the cascade finds
# some faces only in some frames, and a face that just came into view deserves the same
# chances the full-frame scan would give it.
HOT_FRAMES = 10
MIN_CHANGE_SHARE = 0.25
COLD_FRAMES = 30
# A changed region that mostly lies in a hot (or cold) one is the same region.
SAME_REGION_OVERLAP = 0.5

Finder = Callable[[np.ndarray, ScanJob], list[Box]]


@dataclass(frozen=True)
class TrackerSettings:
    """What the tracker needs of the detect settings."""

    min_size_px: int = 48
    scale: float = 1.0
    scale_factor: float = 1.1
    scan_cycle_frames: int = 30

    @property
    def level_step(self) -> float:
        """How much smaller each pyramid level is than the one below it."""
        return level_step(self.scale_factor)


@dataclass
class Track:
    """One followed face: its id, last box, look, and how often it was found and missed."""

    track_id: int
    box: Box
    signature: np.ndarray | None
    hits: int = 1
    missed: int = 0
    frames: int = 1
    # The signature of the track's face in the latest frame it was followed through
    # (found there, or held at its box), and the signature at its box in this frame.
    look: np.ndarray | None = None
    look_here: np.ndarray | None = None

    @property
    def still_here(self) -> bool:
        """True when the picture at the track's box is much as it was: its face did not leave or change."""
        return similarity(self.look, self.look_here) >= CONTINUITY_SIMILARITY


@dataclass
class HotRegion:
    """A region that changed lately: scans it still gets, the frame it was last scanned, scans so far."""

    scans_left: int
    scanned_at: int = -1
    scans: int = 0


@dataclass(frozen=True)
class ColdRegion:
    """A region scanned often lately to no avail: frames it stays cold, and how it looked then."""

    frames_left: int
    look: np.ndarray | None


@dataclass(frozen=True)
class TrackedFace:
    """A face in one frame: its box and the id of the track it belongs to."""

    box: Box
    track_id: int


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


class FaceTracker:
    """Per-stream tracks, updated frame by frame; deterministic for a given frame sequence."""

    def __init__(self, settings: TrackerSettings, find: Finder):
        self.settings, self.find = settings, find
        self.tracks: list[Track] = []
        self.next_id = 1
        self.cycle: list[list[ScanJob]] = []
        self.cycle_position = 0
        self._previous_small: np.ndarray | None = None
        self.hot: dict[Box, HotRegion] = {}
        self.cold: dict[Box, ColdRegion] = {}
        self.frame_index = -1
        self.jobs_run = 0

    def step(self, gray: np.ndarray, hurry: bool = False) -> list[TrackedFace]:
        """Find this frame's faces, update the tracks, return the faces largest first.

        ``hurry`` (a live stage that fell behind) looks only where the tracks are: the
        changed regions and the coverage cycle wait for the next frame without hurry.
        """
        height_px, width_px = gray.shape[:2]
        self.frame_index += 1
        jobs = self._plan(gray, width_px, height_px, hurry)
        self.jobs_run += len(jobs)
        boxes = one_box_per_face([box for job in jobs for box in self.find(gray, job)])
        return self._update(gray, boxes)

    def _plan(self, gray: np.ndarray, width_px: int, height_px: int, hurry: bool) -> list[ScanJob]:
        small = small_copy(gray)
        previous, self._previous_small = self._previous_small, small
        if previous is None or previous.shape != small.shape or not self.cycle:
            self.cycle = coverage_cycle(width_px, height_px, self.settings.min_size_px, self.settings.scale,
                                        self.settings.level_step, self.settings.scan_cycle_frames)
            self.cycle_position = 0
            return self._scene_cut(width_px, height_px)
        windows = [self._window(track, width_px, height_px) for track in self.tracks]
        # Motion where a tracked face still looks like itself is that face moving: its
        # window search covers it.  Where it does not, something new may be there.
        for track in self.tracks:
            track.look_here = signature(gray, track.box)
            track.frames += 1
        explained = [job.region for job, track in zip(windows, self.tracks) if track.still_here]
        motion = find_motion(previous, small, width_px, height_px, ignore=explained)
        if motion.scene_cut:
            return self._scene_cut(width_px, height_px)
        self._heat(gray, motion, width_px, height_px)
        if hurry:
            return windows
        jobs = windows + self._motion_jobs(gray, width_px, height_px)
        jobs += self.cycle[self.cycle_position]
        self.cycle_position = (self.cycle_position + 1) % len(self.cycle)
        return jobs

    def _scene_cut(self, width_px: int, height_px: int) -> list[ScanJob]:
        self.tracks, self.hot, self.cold = [], {}, {}
        return [full_frame_job(width_px, height_px, self.settings.min_size_px, self.settings.scale)]

    def _window(self, track: Track, width_px: int, height_px: int) -> ScanJob:
        size_px = track.box[2]
        region = clip(grow(track.box, round(WINDOW_MARGIN * size_px)), width_px, height_px) or track.box
        min_size_px = max(self.settings.min_size_px, int(size_px / SIZE_BRACKET))
        wanted = self.settings.scale * min(self.settings.min_size_px, WINDOW_FACE_PX) / min_size_px
        scale = aligned_scale(self.settings.scale, wanted, self.settings.scale_factor)
        return ScanJob(region, min_size_px, int(np.ceil(size_px * SIZE_BRACKET)), scale)

    def _heat(self, gray: np.ndarray, motion: Motion, width_px: int, height_px: int) -> None:
        """Age the regions that changed lately and add this frame's.

        Specks (fewer changed pixels than ``MIN_CHANGE_SHARE`` of the smallest face: noise)
        are ignored; a region where at least a smallest face's worth changed stays hot for
        ``HOT_FRAMES`` scans, a smaller change for one.  Of a new region and a hot one that
        mostly overlap, the larger stays, so hot regions never pile up.  A region that has had its
        scans goes cold: change there (a moving background, flickering lights, a waving
        hand) is ignored for ``COLD_FRAMES`` frames, during which the coverage cycle still
        scans it, unless the picture there stops looking as it did (something new came).
        """
        min_size_px = self.settings.min_size_px
        face_area_px = min_size_px * min_size_px
        self.cold = {region: ColdRegion(cold.frames_left - 1, cold.look) for region, cold in self.cold.items()
                     if cold.frames_left > 1 and similarity(cold.look, signature(gray, region)) >= CONTINUITY_SIMILARITY}
        for region, changed_px in zip(motion.regions, motion.changed_px):
            grown = clip(grow(region, min_size_px // 2), width_px, height_px)
            if (grown is None or min(grown[2], grown[3]) < min_size_px or changed_px < MIN_CHANGE_SHARE * face_area_px
                    or any(overlap_of_smaller(grown, cold) >= SAME_REGION_OVERLAP for cold in self.cold)):
                continue
            if any(overlap_of_smaller(grown, other) >= SAME_REGION_OVERLAP and other[2] * other[3] >= grown[2] * grown[3]
                   for other in self.hot):
                continue  # a hot region at least as large holds most of it
            self.hot = {other: entry for other, entry in self.hot.items()
                        if overlap_of_smaller(grown, other) < SAME_REGION_OVERLAP}
            self.hot[grown] = HotRegion(HOT_FRAMES if changed_px >= face_area_px else 1)

    def _motion_jobs(self, gray: np.ndarray, width_px: int, height_px: int) -> list[ScanJob]:
        """Scan the hot regions scanned longest ago first, until this frame's budget is spent.

        The first always goes, so under any load every hot region is scanned in turn.
        """
        budget_px = MOTION_BUDGET_SHARE * width_px * height_px
        jobs: list[ScanJob] = []
        for region, entry in sorted(self.hot.items(), key=lambda item: (item[1].scanned_at, -item[0][2] * item[0][3],
                                                                       item[0])):
            area_px = region[2] * region[3]
            if jobs and area_px > budget_px:
                continue
            budget_px -= area_px
            entry.scanned_at, entry.scans, entry.scans_left = self.frame_index, entry.scans + 1, entry.scans_left - 1
            jobs += region_jobs(region, self.settings.min_size_px, self.settings.scale, self.settings.level_step)
        for region, entry in list(self.hot.items()):
            if entry.scans_left <= 0:
                del self.hot[region]
                if entry.scans >= HOT_FRAMES:
                    self.cold[region] = ColdRegion(COLD_FRAMES, signature(gray, region))
        return jobs

    def _update(self, gray: np.ndarray, boxes: list[Box]) -> list[TrackedFace]:
        looks = [signature(gray, box) for box in boxes]
        # A found box continues a track when it overlaps the track's box and shows the face
        # the track showed in the previous frame: each look aligned on its own box.
        pairs = sorted((-iou(track.box, box), track.track_id, index)
                       for track in self.tracks for index, box in enumerate(boxes)
                       if iou(track.box, box) >= MATCH_IOU
                       and similarity(track.look, looks[index]) >= CONTINUITY_SIMILARITY)
        matched_tracks: dict[int, int] = {}
        for _overlap, track_id, index in pairs:
            if track_id not in matched_tracks and index not in matched_tracks.values():
                matched_tracks[track_id] = index
        detected: list[TrackedFace] = []
        coasting: list[TrackedFace] = []
        kept: list[Track] = []
        for track in self.tracks:
            index = matched_tracks.get(track.track_id)
            if index is not None:
                track.box, track.signature, track.look = boxes[index], looks[index], looks[index]
                track.hits, track.missed = track.hits + 1, 0
                detected.append(TrackedFace(track.box, track.track_id))
            else:
                track.missed += 1
                if track.missed > MAX_MISSED_FRAMES or not track.still_here:
                    continue
                track.look = track.look_here
                if self._still_there(track):
                    coasting.append(TrackedFace(track.box, track.track_id))
            kept.append(track)
        self.tracks = kept
        for index, box in enumerate(boxes):
            if index not in matched_tracks.values() and len(self.tracks) < MAX_TRACKS:
                self.tracks.append(Track(self.next_id, box, looks[index], look=looks[index]))
                detected.append(TrackedFace(box, self.next_id))
                self.next_id += 1
        return one_face_per_place(detected, coasting)

    @staticmethod
    def _still_there(track: Track) -> bool:
        """A track not found this frame keeps its box while the face there looks as when last found."""
        return (track.hits >= MIN_HITS_TO_COAST and track.hits >= MIN_HIT_SHARE_TO_COAST * track.frames
                and track.missed <= MAX_COAST_FRAMES and similarity(track.signature, track.look_here)
                >= SAME_FACE_SIMILARITY)


def one_face_per_place(detected: list[TrackedFace], coasting: list[TrackedFace]) -> list[TrackedFace]:
    """Every detected face, and each coasting one that overlaps none of them; largest first."""
    kept = list(detected)
    for face in coasting:
        if all(iou(face.box, other.box) < MATCH_IOU for other in kept):
            kept.append(face)
    return sorted(kept, key=lambda face: (-face.box[2] * face.box[3], face.track_id))

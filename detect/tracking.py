"""Follow faces through a stream: look where faces were and where the picture changed.

A :class:`FaceTracker` is fed one grey frame at a time.  For each frame it decides which
:class:`~fakeblock.detect.scan.ScanJob` to run, runs them together through the ``find``
function it was given (in the stage :func:`fakeblock.detect.grid.grid_scan`, which samples
each job's region exactly as the full-frame scan does; anything in tests), and matches
what they found to its tracks:

- every track is looked for in a window around its last box, at sizes bracketed around
  its last size, except that a track the cascade keeps finding *rests* while nothing in
  its window changed since the previous frame: it keeps its box without a scan, for at
  most ``MAX_RESTING_FRAMES`` frames in a row (a face held still before a webcam costs a
  third of the scans);
- regions that changed since the previous frame (except where a face found in the
  previous frame, and still looking like itself, moved: its box and ``MOVED_MARGIN`` of
  its width around it) are scanned for every face size that fits, within a budget per
  frame (:mod:`fakeblock.detect.changes`);
- one share of the coverage cycle is scanned, so every place and size of the frame is
  scanned at least once every ``scan_cycle_frames`` frames: a face that appears without
  any motion is found within that many frames;
- every *near miss* (a place where the cascade's raw candidates came to half of what a face
  needs, :func:`fakeblock.detect.grid.grid_scan_near`) is *watched*: its window is scanned
  every frame for ``WATCH_FRAMES`` frames after it was last seen, at sizes bracketed twice
  as widely as a track's (``NEAR_MISS_BRACKET``).  A face the cascade is
  unsure of is found by the full scan in some frames and missed in others as its pixels
  shift a little; its near miss stays in between, so the tracker looks there in every
  frame the full scan would find it, instead of only when the coverage cycle comes by;
- a scene cut (most of the picture changed) ends every track and scans the whole frame.

Found boxes that overlap are merged (one box per face).  A box continues a track when it
overlaps the track's box and shows the track's face: what changed in it since the previous
frame is no more than the face's motion explains, by the track's own measure
(:mod:`fakeblock.detect.identity`).  Otherwise it starts a new track, so a new face where
a tracked one was gets a new id, and its emotion is smoothed afresh; the track whose place
it took ends.  A track not found in a frame keeps its box for up to ``MAX_COAST_FRAMES``
frames while the picture there still shows its face, by the same rule (the cascade misses
faces now and then), and ends after ``MAX_MISSED_FRAMES`` frames without a detection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fakeblock.detect.boxes import Box, clip, grow, iou, one_box_per_face
from fakeblock.detect.changes import ChangedRegions
from fakeblock.detect.grid import GROUP_EPS
from fakeblock.detect.identity import (
    FIRST_USUAL_CHANGE,
    USUAL_CHANGE_BOUND,
    change_allowed,
    next_usual_change,
    unexplained_change,
)
from fakeblock.detect.looks import signature, similarity
from fakeblock.detect.motion import MAX_RESTING_FRAMES, find_motion, region_changed, revealed_edges, small_copy
from fakeblock.detect.scan import ScanJob, Scanned, aligned_scale, coverage_cycle, edge_job, full_frame_job, level_step

# A window reaches this share of the face's width beyond its box on every side.
WINDOW_MARGIN = 0.35
# Motion within this share of a followed face's width beyond its box is that face moving
# (up to 15 % of its width per frame); farther out, even inside its window, it may be
# something new, and is scanned for every face size.
MOVED_MARGIN = 0.15
# A tracked face is looked for from its last width divided by this to its width times this:
# the cascade's grouping joins windows whose sides differ by up to 2 * eps of the smaller,
# so the raw candidates of a face spread about this far in size around its box.
SIZE_BRACKET = 1 + 2 * GROUP_EPS
# A window is scanned on a copy where the smallest size looked for is this many pixels:
# the cascade's own window is 24 px, and a known face needs no more detail to be found again.
WINDOW_FACE_PX = 48
MATCH_IOU = 0.3
# Correlation between a track's face in one frame and the picture at its box in the next
# below which the picture there changed: the face moved off its box, left, or was replaced.
CONTINUITY_SIMILARITY = 0.5
# Only a track found in at least this many frames, and this share of the frames since it
# began, keeps its box when not found: a real face is found nearly every frame, while a
# false detection on a textured background comes and goes.
MIN_HITS_TO_COAST = 3
MIN_HIT_SHARE_TO_COAST = 0.7
MAX_COAST_FRAMES = 15
MAX_MISSED_FRAMES = 15
MAX_TRACKS = 64
# A near miss is watched for this many frames after it was last seen: measured on the
# stress corpus's crowd, an unsure face's cluster drops below half a face's candidates for
# a frame or two now and then, and comes back.
WATCH_FRAMES = 10
MAX_WATCHED = 64
# A near miss's box is the mean of a few raw candidates, less sure of the face's size than a
# face's (on the crowd, a 100-px near miss where the full scan found the face at 56 px three
# frames later): its window looks from its size divided by this to its size times this.
NEAR_MISS_BRACKET = SIZE_BRACKET ** 2

# What one frame's scan jobs find together, in frame pixels; a finder that sees no near
# misses may return the faces alone.
Finder = Callable[[np.ndarray, list[ScanJob]], Scanned | list[Box]]


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
    # Frames in a row it kept its box unscanned, its window unchanged; whether this frame is one.
    resting_frames: int = 0
    resting: bool = False
    # The running mean of its face's unexplained change from frame to frame (detect.identity).
    usual_change: float = FIRST_USUAL_CHANGE
    # The signature at the box it was found at the time before: a box of the cascade's that
    # is off the face (one frame's grouping with something beside it) must not end the track.
    earlier_signature: np.ndarray | None = None

    @property
    def still_here(self) -> bool:
        """True when the picture at the track's box is much as it was: its face did not leave or change."""
        return similarity(self.look, self.look_here) >= CONTINUITY_SIMILARITY

    @property
    def established(self) -> bool:
        """Found in at least ``MIN_HITS_TO_COAST`` frames and ``MIN_HIT_SHARE_TO_COAST`` of the frames
        it was looked for in: a real face, not a false detection that comes and goes."""
        return self.hits >= MIN_HITS_TO_COAST and self.hits >= MIN_HIT_SHARE_TO_COAST * self.frames


@dataclass(frozen=True)
class TrackedFace:
    """A face in one frame: its box and the id of the track it belongs to."""

    box: Box
    track_id: int


class FaceTracker:
    """Per-stream tracks, updated frame by frame; deterministic for a given frame sequence."""

    def __init__(self, settings: TrackerSettings, find: Finder):
        self.settings, self.find = settings, find
        self.tracks: list[Track] = []
        self.next_id = 1
        self.cycle: list[list[ScanJob]] = []
        self.cycle_position = 0
        self._previous_small: np.ndarray | None = None
        self.changes = ChangedRegions(settings.min_size_px, settings.scale)
        # Near misses being watched: box -> frames left.
        self.watched: dict[Box, int] = {}
        self.frame_index = -1

    def step(self, gray: np.ndarray, hurry: bool = False) -> list[TrackedFace]:
        """Find this frame's faces, update the tracks, return the faces largest first.

        ``hurry`` (a live stage that fell behind) looks only where the tracks are: the
        changed regions and the coverage cycle wait for the next frame without hurry.
        """
        height_px, width_px = gray.shape[:2]
        self.frame_index += 1
        jobs = self._plan(gray, width_px, height_px, hurry)
        scanned = self.find(gray, jobs)
        found, near = (scanned.faces, scanned.near) if isinstance(scanned, Scanned) else (list(scanned), [])
        # A resting track's box stands for what its window's scan would have found: it takes
        # part in merging overlapping boxes (one per face) as a found box would.
        resting = {track.box for track in self.tracks if track.resting}
        boxes = one_box_per_face(found + sorted(resting))
        held = {box for box in boxes if box in resting and box not in found}
        faces = self._update(gray, [box for box in boxes if box not in held], held)
        self._watch(near)
        return faces

    def _plan(self, gray: np.ndarray, width_px: int, height_px: int, hurry: bool) -> list[ScanJob]:
        small = small_copy(gray)
        previous, self._previous_small = self._previous_small, small
        if previous is None or previous.shape != small.shape or not self.cycle:
            self.cycle = coverage_cycle(width_px, height_px, self.settings.min_size_px, self.settings.scale,
                                        self.settings.level_step, self.settings.scan_cycle_frames)
            self.cycle_position = 0
            return self._scene_cut(width_px, height_px)
        regions = [around(track.box, WINDOW_MARGIN, width_px, height_px) for track in self.tracks]
        for track, region in zip(self.tracks, regions, strict=True):
            track.look_here = signature(gray, track.box)
            track.resting = (track.missed == 0 and track.resting_frames < MAX_RESTING_FRAMES and track.established
                             and track.still_here and not region_changed(previous, small, region, width_px, height_px))
            track.frames += not track.resting  # a resting frame is no look: it counts as neither hit nor miss
        windows = [self._window(track.box, region) for track, region in zip(self.tracks, regions, strict=True)
                   if not track.resting]
        # Motion at a tracked face that still looks like itself is that face moving: its
        # window search covers it.  Where it does not, or farther out in its window (a hand,
        # another face), something new may be there; and a track the previous frame missed
        # explains nothing (what moved may have left its window).
        explained = [around(track.box, MOVED_MARGIN, width_px, height_px)
                     for track in self.tracks if track.still_here and not track.missed]
        motion = find_motion(previous, small, width_px, height_px, ignore=explained)
        if motion.scene_cut:
            return self._scene_cut(width_px, height_px)
        self.changes.heat(gray, motion, width_px, height_px, self.frame_index)
        if hurry:
            return windows
        # A watched place where a track's window is scanned anyway needs no scan of its own.
        searched = [track.box for track in self.tracks if not track.resting]
        windows += [self._window(box, around(box, WINDOW_MARGIN, width_px, height_px), NEAR_MISS_BRACKET)
                    for box in self.watched
                    if all(iou(box, other) < MATCH_IOU for other in searched)]
        jobs = windows + self.changes.jobs(gray, width_px, height_px, self.frame_index,
                                           lambda region: region_changed(previous, small, region, width_px, height_px))
        jobs += [edge_job(edge, self.settings.min_size_px, width_px, height_px, self.settings.scale)
                 for edge in revealed_edges(motion, width_px, height_px)]
        jobs += self.cycle[self.cycle_position]
        self.cycle_position = (self.cycle_position + 1) % len(self.cycle)
        return jobs

    def _scene_cut(self, width_px: int, height_px: int) -> list[ScanJob]:
        self.tracks = []
        self.changes.clear()
        self.watched = {}
        return [full_frame_job(width_px, height_px, self.settings.min_size_px, self.settings.scale)]

    def _window(self, box: Box, region: Box, bracket: float = SIZE_BRACKET) -> ScanJob:
        """The scan of the window ``region`` around ``box`` (a track's last box, a near miss) at
        sizes from the box's divided by ``bracket`` to times it."""
        size_px = box[2]
        min_size_px = max(self.settings.min_size_px, int(size_px / bracket))
        wanted = self.settings.scale * min(self.settings.min_size_px, WINDOW_FACE_PX) / min_size_px
        scale = aligned_scale(self.settings.scale, wanted, self.settings.scale_factor)
        return ScanJob(region, min_size_px, int(np.ceil(size_px * bracket)), scale)

    def _update(self, gray: np.ndarray, boxes: list[Box], held: set[Box]) -> list[TrackedFace]:
        looks = [signature(gray, box) for box in boxes]
        # A found box continues a track when it overlaps the track's box and shows the face
        # the track showed in the previous frame, up to what its motion explains.
        changes: dict[tuple[int, int], float] = {}
        # Tracks a box over them showed another face than theirs: someone took their place.
        displaced: set[int] = set()
        for track in self.tracks:
            allowed = change_allowed(track.usual_change)
            for index, box in enumerate(boxes):
                if iou(track.box, box) >= MATCH_IOU:
                    change = self._change(track, gray, box, looks[index], allowed)
                    if change <= allowed:
                        changes[track.track_id, index] = change
                    else:
                        displaced.add(track.track_id)
        matched_tracks: dict[int, int] = {}
        for _overlap, track_id, index in sorted((-iou(track.box, boxes[index]), track.track_id, index)
                                                for track in self.tracks for index in range(len(boxes))
                                                if (track.track_id, index) in changes):
            if track_id not in matched_tracks and index not in matched_tracks.values():
                matched_tracks[track_id] = index
        detected: list[TrackedFace] = []
        coasting: list[TrackedFace] = []
        kept: list[Track] = []
        for track in self.tracks:
            matched = matched_tracks.get(track.track_id)
            if matched is not None:
                track.usual_change = next_usual_change(track.usual_change, changes[track.track_id, matched])
                track.earlier_signature = track.signature
                track.box, track.signature, track.look = boxes[matched], looks[matched], looks[matched]
                track.hits, track.missed, track.frames = track.hits + 1, 0, track.frames + track.resting
                track.resting_frames = 0
                detected.append(TrackedFace(track.box, track.track_id))
            elif track.resting:  # kept where it was, unless a larger box found over it won the merge
                track.look, track.resting_frames = track.look_here, track.resting_frames + 1
                (detected if track.box in held else coasting).append(TrackedFace(track.box, track.track_id))
            else:
                track.resting_frames = 0
                track.missed += 1
                if track.missed > MAX_MISSED_FRAMES or not track.still_here or track.track_id in displaced:
                    continue
                track.look = track.look_here
                if self._still_there(track, gray):
                    coasting.append(TrackedFace(track.box, track.track_id))
            kept.append(track)
        self.tracks = kept
        for index, box in enumerate(boxes):
            if index not in matched_tracks.values() and len(self.tracks) < MAX_TRACKS:
                self.tracks.append(Track(self.next_id, box, looks[index], look=looks[index]))
                detected.append(TrackedFace(box, self.next_id))
                self.next_id += 1
        return one_face_per_place(detected, coasting)

    def _watch(self, near: list[Box]) -> None:
        """Watch this frame's near misses afresh (one per place, the latest box), age the others,
        and stop watching a place after ``WATCH_FRAMES`` frames without one.  A place stays
        watched while a track is there: a face the cascade is unsure of loses its track after
        ``MAX_MISSED_FRAMES`` misses, and its near miss is what brings the tracker back."""
        watched = {box: left - 1 for box, left in self.watched.items() if left > 1}
        for box in near:
            watched = {other: left for other, left in watched.items() if iou(other, box) < MATCH_IOU}
            watched[box] = WATCH_FRAMES
        self.watched = dict(list(watched.items())[-MAX_WATCHED:])

    @staticmethod
    def _change(track: Track, gray: np.ndarray, box: Box, box_look: np.ndarray | None, allowed: float) -> float:
        """The unexplained change from ``track``'s face to ``box``: against its latest look, or,
        when that is too large, its look one find earlier (the latest box may have been off the
        face: the cascade groups a face with what is beside it now and then).  A face replaced
        in place is unlike both."""
        # A track the last frames missed is compared with its face as last found.
        look = track.signature if track.missed else track.look
        change = unexplained_change(look, gray, box, box_look, enough=USUAL_CHANGE_BOUND, frames=track.missed + 1,
                                    seen_at=track.box)
        if change > allowed and track.earlier_signature is not None:
            change = min(change, unexplained_change(track.earlier_signature, gray, box, box_look,
                                                    enough=USUAL_CHANGE_BOUND, frames=track.missed + 2,
                                                    seen_at=track.box))
        return change

    @staticmethod
    def _still_there(track: Track, gray: np.ndarray) -> bool:
        """A track not found this frame keeps its box while the face there is the one last found,
        by the identity rule (:mod:`fakeblock.detect.identity`)."""
        if not track.established or track.missed > MAX_COAST_FRAMES:
            return False
        allowed = change_allowed(track.usual_change)
        return unexplained_change(track.signature, gray, track.box, track.look_here, enough=allowed) <= allowed


def around(box: Box, margin_share: float, width_px: int, height_px: int) -> Box:
    """``box`` widened by ``margin_share`` of its width on every side, within the frame."""
    return clip(grow(box, round(margin_share * box[2])), width_px, height_px) or box


def one_face_per_place(detected: list[TrackedFace], coasting: list[TrackedFace]) -> list[TrackedFace]:
    """Every detected face, and each coasting one that overlaps none of them; largest first."""
    kept = list(detected)
    for face in coasting:
        if all(iou(face.box, other.box) < MATCH_IOU for other in kept):
            kept.append(face)
    return sorted(kept, key=lambda face: (-face.box[2] * face.box[3], face.track_id))

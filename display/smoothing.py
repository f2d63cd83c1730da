"""Steadier emotions: each track's scores averaged over its recent frames.

One frame's scores flicker (a blink, a compression artefact, a half-turned head), while
a person's expression changes over many frames.  :class:`TrackSmoother` keeps, per
stream and track id, an exponential moving average of the seven scores with a time
constant of ``time_constant_frames`` frames: a frame's weight halves every
``0.69 * time_constant_frames`` frames.  It only looks back, so it works the same live
and in a replay, and adds no delay.  A track seen again after a gap of ``g`` frames
weighs its old average as if ``g`` frames had passed.  Faces without a track id (the
``--tracking off`` path) pass through unchanged.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from fakeblock.common import wire

# 0.4 s at 30 fps: long enough to hold a label through a blink or a compression artefact,
# short enough to follow an expression (they last from about half a second to a few).
TIME_CONSTANT_FRAMES = 12.0
# Tracks remembered across all streams; the least recently seen is forgotten first.
MAX_SMOOTHED_TRACKS = 1024


class TrackSmoother:
    """Exponential moving average of each track's emotion scores, fed results in frame order."""

    def __init__(self, time_constant_frames: float = TIME_CONSTANT_FRAMES, max_tracks: int = MAX_SMOOTHED_TRACKS):
        self.keep_per_frame = math.exp(-1.0 / time_constant_frames) if time_constant_frames > 0 else 0.0
        self.max_tracks = max_tracks
        self._tracks: OrderedDict[tuple[str, int], tuple[np.ndarray, int]] = OrderedDict()

    def smooth(self, result: wire.Result) -> wire.Result:
        """The result with each tracked face's scores replaced by its track's running average."""
        if not result.tracks:
            return result
        rows = []
        for track, scores in zip(result.tracks, result.scores, strict=True):
            rows.append(tuple(float(value) for value in self._update(result.info, track, np.asarray(scores))))
        return wire.Result(result.info, result.boxes, tuple(rows), result.tracks)

    def _update(self, info: wire.FrameInfo, track: int, scores: np.ndarray) -> np.ndarray:
        key = (info.stream, track)
        previous = self._tracks.pop(key, None)
        if previous is None or info.frame_number <= previous[1]:
            average = scores
        else:
            keep = self.keep_per_frame ** (info.frame_number - previous[1])
            average = keep * previous[0] + (1.0 - keep) * scores
        self._tracks[key] = (average, info.frame_number)
        while len(self._tracks) > self.max_tracks:
            self._tracks.popitem(last=False)
        return average

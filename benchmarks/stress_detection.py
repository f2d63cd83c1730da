"""Detection alone on a clip, in this process: the tracker and the full-frame scan, frame by frame.

``stress.py --detection-only`` uses this to score a clip's tracking in seconds, without
the classifier: the boxes and ids are exactly those the detect stage gives (the stage
calls the same :class:`~fakeblock.detect.core.StreamTrackers`), on one thread.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fakeblock.common.config import DetectConfig
from fakeblock.common.preprocess import to_gray
from fakeblock.common.wire import MAX_FACES_PER_FRAME
from fakeblock.detect.core import StreamTrackers, cascade_finder, find_faces, load_cascade
from fakeblock.detect.motion import region_changed, small_copy


@dataclass
class DetectionRun:
    """A clip's faces frame by frame (tracked ones with ids), and the detect CPU seconds it took."""

    frames: list[list[dict]]
    cpu_s: float


def grey_frames(video: Path) -> list[np.ndarray]:
    """Every frame of the clip, grey."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(to_gray(image))
    capture.release()
    return frames


def full_frame(frames: list[np.ndarray], config: DetectConfig) -> DetectionRun:
    """The reference: the full-frame scan of every frame (what ``--tracking off`` runs)."""
    cv2.setNumThreads(1)
    cascade = load_cascade()
    started_s = time.process_time()
    found = [[{"box": list(box)} for box in find_faces(gray, cascade, config)[:MAX_FACES_PER_FRAME]]
             for gray in frames]
    return DetectionRun(found, time.process_time() - started_s)


def tracked(frames: list[np.ndarray], config: DetectConfig) -> DetectionRun:
    """The tracker's boxes and ids on every frame, one stream, one thread."""
    cv2.setNumThreads(1)
    trackers = StreamTrackers(config, cascade_finder([load_cascade()], config))
    started_s = time.process_time()
    found = []
    for number, gray in enumerate(frames):
        result = trackers.detect("clip", number, gray, MAX_FACES_PER_FRAME, live=False)
        assert result is not None  # one stream, frames in order from the first
        boxes, tracks, _crops = result
        found.append([{"box": list(box), "track": track} for box, track in zip(boxes, tracks, strict=True)])
    return DetectionRun(found, time.process_time() - started_s)


def cached_full_frame(video: Path, frames: list[np.ndarray], config: DetectConfig) -> DetectionRun:
    """:func:`full_frame`, kept beside the clip (``clip.full-frame.json``) for the same clip and settings."""
    cache = Path(f"{video}.full-frame.json")
    key = {"size": video.stat().st_size, "mtime_ns": video.stat().st_mtime_ns, "settings": repr(config)}
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return DetectionRun(stored["frames"], stored["cpu_s"])
    run = full_frame(frames, config)
    cache.write_text(json.dumps({"key": key, "frames": run.frames, "cpu_s": run.cpu_s}))
    return run


class PictureChanges:
    """Whether the picture at a box changed between a frame and the one before (the tracker's own test)."""

    def __init__(self, frames: list[np.ndarray]):
        self.small = [small_copy(gray) for gray in frames]
        self.height_px, self.width_px = frames[0].shape[:2] if frames else (0, 0)

    def __call__(self, frame: int, box: tuple[int, int, int, int]) -> bool:
        """True at the first frame, or when a pixel of the box moved past the motion threshold."""
        if frame == 0:
            return True
        return region_changed(self.small[frame - 1], self.small[frame], box, self.width_px, self.height_px)

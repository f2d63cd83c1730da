"""Face detection with OpenCV's frontal-face Haar cascade, as plain functions on arrays.

Two paths: :func:`detect` scans the whole frame (``--tracking off``, the reference), and
:class:`StreamTrackers` follows each stream's faces with a
:class:`~fakeblock.detect.tracking.FaceTracker`, scanning much less per frame.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import cv2.data  # the cascade files; named so the type checker sees the submodule
import numpy as np

from fakeblock.common.config import DetectConfig
from fakeblock.common.model_io import FACE_SIZE_PX
from fakeblock.common.preprocess import crop_face, to_gray
from fakeblock.detect.boxes import Box, one_box_per_face
from fakeblock.detect.grid import grid_scan_near
from fakeblock.detect.scan import ScanJob, run_job
from fakeblock.detect.tracking import FaceTracker, Finder, TrackerSettings

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# Streams one detect worker keeps tracks for; the least recently seen goes first.
MAX_TRACKED_STREAMS = 64


def load_cascade(path: str | Path | None = None) -> cv2.CascadeClassifier:
    """The stock frontal-face cascade that ships with opencv-python (or a given XML file)."""
    path = Path(path) if path else Path(cv2.data.haarcascades) / CASCADE_FILE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise ValueError(f"{path}: not a usable Haar cascade")
    return cascade


def find_faces(gray: np.ndarray, cascade: cv2.CascadeClassifier, params: DetectConfig) -> list[Box]:
    """Boxes ``(x, y, width, height)`` in ``gray``'s pixels, largest first, one per face.

    With ``params.detect_scale`` below 1 the cascade runs on a downscaled copy (faster;
    the minimum face size shrinks with it) and boxes are mapped back to full size.
    """
    scale = float(params.detect_scale)
    if not 0 < scale <= 1:
        raise ValueError(f"detect_scale must lie in (0, 1], got {scale}")
    job = ScanJob((0, 0, gray.shape[1], gray.shape[0]), params.min_size_px, None, scale)
    return one_box_per_face(run_job(gray, cascade, job, params.scale_factor, params.min_neighbors))


def crop_faces(gray: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """48x48 grey crops ``(N, 48, 48)`` uint8 for the classifier, one per box."""
    if not boxes:
        return np.zeros((0, FACE_SIZE_PX, FACE_SIZE_PX), np.uint8)
    return np.stack([crop_face(gray, box) for box in boxes])


def detect(image: np.ndarray, cascade: cv2.CascadeClassifier, params: DetectConfig,
           max_faces: int) -> tuple[list[Box], np.ndarray]:
    """Boxes and crops for one BGR or grey frame, at most ``max_faces`` (the largest)."""
    gray = to_gray(image)
    boxes = find_faces(gray, cascade, params)[:max_faces]
    return boxes, crop_faces(gray, boxes)


def tracker_settings(params: DetectConfig) -> TrackerSettings:
    """The tracker's share of the detect settings."""
    return TrackerSettings(params.min_size_px, params.detect_scale, params.scale_factor, params.scan_cycle_frames)


def cascade_finder(cascades: Sequence[cv2.CascadeClassifier], params: DetectConfig) -> Finder:
    """The tracker's ``find``: a frame's scan jobs through the cascade, sampled as :func:`find_faces`
    samples, on as many threads as ``cascades`` (one each, copies of one cascade); its faces
    and near misses."""
    pool = ThreadPoolExecutor(len(cascades), thread_name_prefix="detect-scan") if len(cascades) > 1 else None
    return lambda gray, jobs: grid_scan_near(gray, cascades, jobs, float(params.detect_scale), params.scale_factor,
                                             params.min_size_px, params.min_neighbors, pool)


class StreamTrackers:
    """One :class:`FaceTracker` per stream, at most ``max_streams`` of them.

    A tracker follows one epoch of its stream (``wire.FrameInfo.epoch``) from its first
    frame, so a stream sent again after a crash gets exactly the boxes and ids it got
    the first time.  A stream whose frame numbers go back (a live source that started
    again) starts afresh.  With ``follow_epochs`` (where the supervisor rewinds the
    sources after a crash), lossless frames a tracker cannot follow exactly, an older
    epoch's or a stream joined after its first frame (this worker was restarted), are
    refused (None): the rewind sends them again.
    """

    def __init__(self, params: DetectConfig, find: Finder, max_streams: int = MAX_TRACKED_STREAMS):
        self.settings, self.find, self.max_streams = tracker_settings(params), find, max_streams
        # Refusing what it cannot follow exactly only helps where a rewind will send it again.
        self.follow_epochs = params.follow_epochs
        self._trackers: OrderedDict[str, tuple[FaceTracker, int, int]] = OrderedDict()

    def _tracker_for(self, stream: str, frame_number: int, epoch: int, live: bool) -> FaceTracker | None:
        tracker, last_number, tracked_epoch = self._trackers.pop(stream, (None, -1, -1))
        new_epoch = tracker is None or epoch > tracked_epoch
        if self.follow_epochs and not live:
            # Exactly, or not at all: a new epoch from its first frame, the current one in order.
            follows = frame_number == 0 if new_epoch else epoch == tracked_epoch and frame_number > last_number
            if not follows:
                if tracker is not None:  # it keeps following the epoch it follows
                    self._trackers[stream] = (tracker, last_number, tracked_epoch)
                return None
        if tracker is None or new_epoch or frame_number <= last_number:
            tracker = FaceTracker(self.settings, self.find)
        self._trackers[stream] = (tracker, frame_number, epoch)
        while len(self._trackers) > self.max_streams:
            self._trackers.popitem(last=False)
        return tracker

    def detect(self, stream: str, frame_number: int, image: np.ndarray, max_faces: int,
               hurry: bool = False, epoch: int = 0,
               live: bool = True) -> tuple[list[Box], list[int], np.ndarray] | None:
        """Boxes, track ids and crops of one frame of ``stream``, at most ``max_faces`` (the largest);
        None for a lossless frame its tracker cannot follow (see the class).

        ``hurry``: see :meth:`FaceTracker.step`.
        """
        tracker = self._tracker_for(stream, frame_number, epoch, live)
        if tracker is None:
            return None
        gray = to_gray(image)
        faces = tracker.step(gray, hurry)[:max_faces]
        boxes = [face.box for face in faces]
        return boxes, [face.track_id for face in faces], crop_faces(gray, boxes)

"""Frame sources for the capture stage (no sockets here).

:func:`open_source` turns the ``--source`` string into a :class:`Source`: a camera index
("0"), a video file, an image file (one frame), a folder of images (sorted by name, one
frame each), a stream URL OpenCV can open (rtsp://, http://, ...) or ``demo``.  Iterating
a source yields ``(pixels, position_s)``: H x W x 3 uint8 BGR and the frame's place in
the file in seconds (seconds since opening for cameras and streams).

Cameras and streams are *live*; files, images and the demo are replayed as fast as the
pipeline takes them (*lossless*) unless ``realtime`` paces them at their own frame rate
with a :class:`~fakeblock.capture.flow.Pacer`, which makes them live too.  Bad input
raises a one-line ``UserError``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np

from fakeblock.capture import demo
from fakeblock.capture.flow import Pacer
from fakeblock.common.errors import UserError
from fakeblock.common.wire import MAX_DIMENSION_PX, MAX_STREAM_NAME_CHARS

LOGGER = logging.getLogger(__name__)
# OpenCV's FFmpeg backend reads its log level once, when it first opens a file; FFmpeg's
# own lines (``moov atom not found``) would go to the raw stderr above our one-line error.
# Quiet unless the user asked for them (AV_LOG_QUIET is -8).
FFMPEG_LOG_LEVEL_VARIABLE = "OPENCV_FFMPEG_LOGLEVEL"
FFMPEG_QUIET = "-8"
os.environ.setdefault(FFMPEG_LOG_LEVEL_VARIABLE, FFMPEG_QUIET)
DEMO_SOURCE = "demo"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
STREAM_URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
CAMERA_HINT = "use --source FILE or --source demo"
STREAM_OPEN_TIMEOUT_MS = 10_000
STREAM_READ_TIMEOUT_MS = 5_000
# Files that do not state a usable frame rate are timed and paced as if shot at this rate.
FALLBACK_FPS = 30.0
MAX_SANE_FPS = 1000.0
# Still images under --realtime are shown as a slideshow at this rate.
SLIDESHOW_FPS = 1.0
MIN_MISSING_FRAMES = 3  # fewer missing than this may be a container's rounded length (cut_short)
# A folder is opened only once one of its first images decodes, so a folder of nothing usable
# is refused before the run starts.  The probe stops at the first image that decodes (one
# decode for a sound folder, and the capture keeps its pixels).  Ten: a file that is no image
# fails at its header in well under a millisecond, and one that fails deep in its data costs
# at most one decode (a few tens of milliseconds for a camera photo), so ten keep the start
# well inside a second; and ten broken images in a row, at the head of a folder sorted by
# name, means the wrong folder (or a broken copy) rather than bad luck.
FOLDER_PROBE_IMAGES = 10

Reading = tuple[np.ndarray, float]


def normalize_frame(pixels: np.ndarray) -> np.ndarray:
    """3-channel BGR uint8 no larger than the wire allows (big photos are shrunk, not refused)."""
    if pixels.ndim == 2:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    elif pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    elif pixels.shape[2] == 1:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    height_px, width_px = pixels.shape[:2]
    if max(height_px, width_px) > MAX_DIMENSION_PX:
        scale = MAX_DIMENSION_PX / max(height_px, width_px)
        size = (max(1, int(width_px * scale)), max(1, int(height_px * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return pixels


def file_position_s(position_ms: float, frame_index: int, fps: float | None, previous_s: float) -> float:
    """A file frame's time: the decoder's timestamp when sane, else ``frame_index / fps``."""
    position_s = position_ms / 1000.0
    # Some backends report 0 or garbage for every frame; a timestamp must be finite,
    # not negative, not run backwards and not stay at 0 after the first frame.
    if math.isfinite(position_s) and position_s >= max(previous_s, 0.0) and (frame_index == 0 or position_s > 0):
        return position_s
    return frame_index / (fps or FALLBACK_FPS)


def sane_fps(value: float) -> float | None:
    """A frame rate reported by OpenCV, or None when it is missing or absurd."""
    return value if math.isfinite(value) and 0 < value <= MAX_SANE_FPS else None


class Source:
    """Frames from somewhere: iterate for ``(pixels, position_s)``; ``close()`` when done.

    ``name`` is the default stream name, ``fps`` the native rate (None if unknown),
    ``live`` whether frames come at their own pace, ``frame_count`` the length if known.
    """

    def __init__(self, name: str, fps: float | None, live: bool, frame_count: int | None,
                 pace_fps: float | None = None):
        self.name = name[:MAX_STREAM_NAME_CHARS] or "stream"
        self.fps, self.live, self.frame_count, self.pace_fps = fps, live, frame_count, pace_fps

    def frames(self, wait: Callable[[float], None] = time.sleep) -> Iterator[Reading]:
        """Yield frames in order; under realtime pacing, ``wait(seconds)`` until each is due.

        The stage passes a ``wait`` that keeps heartbeats and stop orders flowing.
        """
        pacer = Pacer(self.pace_fps) if self.pace_fps else None
        for frame_index, (pixels, position_s) in enumerate(self._read()):
            if pacer is not None:
                delay_s = pacer.delay_s(frame_index)
                if delay_s > 0:
                    wait(delay_s)
            yield normalize_frame(pixels), position_s

    def __iter__(self) -> Iterator[Reading]:
        return self.frames()

    def stream_name(self, requested: str | None = None) -> str:
        """``requested`` (``--stream``) if given, checked so the wire never refuses it, else ``name``."""
        if requested is not None and not 0 < len(requested) <= MAX_STREAM_NAME_CHARS:
            raise UserError(f"--stream must be 1 to {MAX_STREAM_NAME_CHARS} characters")
        return requested or self.name

    def _read(self) -> Iterator[Reading]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *_exception) -> None:
        self.close()


class VideoSource(Source):
    """A camera, stream or video file read through ``cv2.VideoCapture``."""

    def __init__(self, capture: cv2.VideoCapture, first: Reading, name: str, live: bool,
                 started_s: float | None = None):
        """``started_s`` (monotonic time of the first frame) marks a camera or stream; files have None."""
        fps = sane_fps(capture.get(cv2.CAP_PROP_FPS))
        # Containers state their length (an estimate for some codecs); devices do not.
        frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if started_s is None else 0
        super().__init__(name, fps, live, frame_count if frame_count > 0 else None)
        self.capture, self.started_s = capture, started_s
        self.first: Reading | None = first

    def _read(self) -> Iterator[Reading]:
        assert self.first is not None, "a video source is read once"
        pixels: np.ndarray | None
        pixels, position_s = self.first
        self.first = None  # a source is read once; do not keep the frame alive
        frame_index = 0
        while pixels is not None:
            yield pixels, position_s
            frame_index += 1
            pixels, position_s = _read_video_frame(self.capture, frame_index, self.fps, position_s,
                                                   self.started_s)
        if self.started_s is not None:
            LOGGER.warning("%s: the camera or stream stopped sending frames", self.name)
        elif cut_short(frame_index, self.frame_count, self.fps):
            LOGGER.warning("%s: ended after %d of the %d frames its container announces: the file is cut "
                           "short or damaged, and the rest of it could not be read", self.name, frame_index,
                           self.frame_count)

    def close(self) -> None:
        self.capture.release()


def cut_short(frames_read: int, frame_count: int | None, fps: float | None) -> bool:
    """True when a file gave clearly fewer frames than its container announced.

    Some containers state their length as duration times frame rate, which rounding can
    put a frame or two off; a second of frames missing (at least ``MIN_MISSING_FRAMES``) is
    no rounding: the file was cut (a copy that stopped, a recording whose end is lost)."""
    if frame_count is None:
        return False
    return frame_count - frames_read >= max(MIN_MISSING_FRAMES, round(fps or 0))


def frames_to_read(frame_count: int | None, max_frames: int | None) -> int | None:
    """How many frames a run of a source of ``frame_count`` frames reads, when its length is known."""
    if frame_count is None:
        return None
    return frame_count if max_frames is None else min(frame_count, max_frames)


def _read_video_frame(capture: cv2.VideoCapture, frame_index: int, fps: float | None, previous_s: float,
                      started_s: float | None) -> tuple[np.ndarray | None, float]:
    """The next frame (None at the end) and its position; ``started_s`` given means a device."""
    ok, pixels = capture.read()
    if not ok or pixels is None or pixels.size == 0:
        return None, previous_s
    if started_s is not None:
        return pixels, time.monotonic() - started_s
    return pixels, file_position_s(capture.get(cv2.CAP_PROP_POS_MSEC), frame_index, fps, previous_s)


class ImageSource(Source):
    """Still images, one frame each, in the order given.

    ``first`` holds the pixels of ``paths[first_index]`` when already decoded; the paths
    before it are known not to decode (the folder's probe tried them).  Each image that does
    not decode is skipped with a warning, and the count of them is logged at the end.
    """

    def __init__(self, paths: list[Path], name: str, realtime: bool, first: np.ndarray | None = None,
                 first_index: int = 0):
        super().__init__(name, None, realtime, len(paths), SLIDESHOW_FPS if realtime else None)
        self.paths, self.first, self.first_index = paths, first, first_index

    def _read(self) -> Iterator[Reading]:
        frame_index = 0
        for path_index, path in enumerate(self.paths):
            pixels = self._decode(path_index, path)
            if pixels is None:
                LOGGER.warning("%s: cannot decode image, skipped", path)
                continue
            yield pixels, frame_index / SLIDESHOW_FPS
            frame_index += 1
        skipped = len(self.paths) - frame_index
        if skipped:
            LOGGER.warning("%s: %d of %d images could not be decoded and were skipped", self.name, skipped,
                           len(self.paths))

    def _decode(self, path_index: int, path: Path) -> np.ndarray | None:
        """The pixels of ``paths[path_index]``, None when it does not decode (known or found now)."""
        if path_index < self.first_index:
            return None
        if path_index == self.first_index and self.first is not None:
            pixels, self.first = self.first, None  # a source is read once; do not keep the frame alive
            return pixels
        return cv2.imread(str(path))


class DemoSource(Source):
    """The animated astronaut clip: finite when replayed, looping forever when live."""

    def __init__(self, live: bool):
        super().__init__(DEMO_SOURCE, demo.DEMO_FPS, live, None if live else demo.DEMO_FRAME_COUNT,
                         demo.DEMO_FPS if live else None)
        demo.demo_photo()  # load now, so a broken install fails at open, not mid-stream

    def _read(self) -> Iterator[Reading]:
        indices = itertools.count() if self.live else range(demo.DEMO_FRAME_COUNT)
        for frame_index in indices:
            yield demo.render_demo_frame(frame_index), frame_index / demo.DEMO_FPS


@contextlib.contextmanager
def quiet_opencv():
    """Silence OpenCV's own warnings while probing: the user gets our one line instead."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _open_capture(target: int | str, *backend_and_parameters) -> tuple[cv2.VideoCapture, Reading | None]:
    """Open a VideoCapture and read its first frame (None when nothing decodes)."""
    with quiet_opencv():
        capture = cv2.VideoCapture(target, *backend_and_parameters)
        if not capture.isOpened():
            capture.release()
            return capture, None
        ok, pixels = capture.read()
    if not ok or pixels is None or pixels.size == 0:
        capture.release()
        return capture, None
    return capture, (pixels, 0.0)


def open_camera(index: int) -> VideoSource:
    """Camera ``index`` (live)."""
    capture, first = _open_capture(index)
    if first is None:
        raise UserError(f"camera {index} cannot be opened or sends no frames; {CAMERA_HINT}")
    return VideoSource(capture, first, f"camera{index}", live=True, started_s=time.monotonic())


def open_stream_url(url: str) -> VideoSource:
    """A network stream OpenCV's FFmpeg backend can read (live)."""
    parsed = urlparse(url)
    # Bounded timeouts: a dead server must not hang the open, nor a stalled one a stop order.
    timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                STREAM_READ_TIMEOUT_MS]
    capture, first = _open_capture(url, cv2.CAP_FFMPEG, timeouts)
    if first is None:
        raise UserError(f"{url}: cannot open stream (is the address right and the server up?)")
    return VideoSource(capture, first, parsed.hostname or "stream", live=True, started_s=time.monotonic())


def open_video_file(path: Path, realtime: bool) -> VideoSource:
    """A video file: lossless, or live when paced at its own rate by ``realtime``."""
    capture, first = _open_capture(str(path))
    if first is None:
        raise UserError(f"{path}: cannot decode video")
    pixels, _ = first
    first = (pixels, file_position_s(capture.get(cv2.CAP_PROP_POS_MSEC), 0, None, 0.0))
    source = VideoSource(capture, first, path.stem, live=realtime)
    if realtime:
        source.pace_fps = source.fps or FALLBACK_FPS
    return source


def open_image_file(path: Path, realtime: bool) -> ImageSource:
    """A single image: one frame."""
    pixels = cv2.imread(str(path))
    if pixels is None:
        raise UserError(f"{path}: cannot decode image")
    return ImageSource([path], path.stem, realtime, first=pixels)


def open_image_folder(path: Path, realtime: bool) -> ImageSource:
    """Every image directly inside ``path``, sorted by name; refused when none of the first decodes."""
    try:
        paths = sorted(child for child in path.iterdir()
                       if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as error:
        raise UserError(f"{path}: cannot read folder ({error.strerror})") from None
    if not paths:
        raise UserError(f"{path}: folder has no images ({', '.join(IMAGE_SUFFIXES)})")
    first_index, first = first_decodable(paths[:FOLDER_PROBE_IMAGES])
    if first is None:
        raise UserError(f"{path}: {_undecodable_folder(len(paths))}")
    return ImageSource(paths, path.resolve().name, realtime, first=first, first_index=first_index)


def first_decodable(paths: list[Path]) -> tuple[int, np.ndarray | None]:
    """The index and pixels of the first of ``paths`` that decodes; ``(len(paths), None)`` if none does."""
    for index, path in enumerate(paths):
        pixels = cv2.imread(str(path))
        if pixels is not None:
            return index, pixels
    return len(paths), None


def _undecodable_folder(image_count: int) -> str:
    """Why a folder is refused: none of its images, or of the first ``FOLDER_PROBE_IMAGES``, decodes."""
    if image_count == 1:
        return "its one image cannot be decoded (damaged, or not an image)"
    if image_count <= FOLDER_PROBE_IMAGES:
        return f"none of its {image_count} images can be decoded (damaged, or not images)"
    return (f"none of its first {FOLDER_PROBE_IMAGES} images (of {image_count}) can be decoded (damaged, "
            f"or not images); is it the right folder?")


def names_a_file(spec: str) -> bool:
    """True when ``spec`` (what ``--source`` takes) names a file or folder, not ``demo``, a camera or a URL."""
    spec = spec.strip()
    return spec != DEMO_SOURCE and not spec.isdigit() and "://" not in spec


def open_source(spec: str, realtime: bool = False) -> Source:
    """Open what ``--source`` names: camera index, file, image, folder, stream URL or ``demo``."""
    spec = spec.strip()
    if spec == DEMO_SOURCE:
        return DemoSource(live=realtime)
    if spec.isdigit():
        return open_camera(int(spec))
    scheme = urlparse(spec).scheme.lower()
    if "://" in spec:
        if scheme not in STREAM_URL_SCHEMES:
            raise UserError(f"{spec}: unsupported address; use one of {', '.join(STREAM_URL_SCHEMES)}")
        return open_stream_url(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        return open_image_folder(path, realtime)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return open_image_file(path, realtime)
    return open_video_file(path, realtime)

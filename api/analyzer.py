"""fakeblock in one process: ``Analyzer().analyze(image)`` and ``analyze_video(source)``.

:func:`analyze` is both in one call, for a script that has one image or video to look at.

No ZeroMQ and no child processes: an :class:`Analyzer` calls, frame after frame, the same
functions the stages of ``fakeblock up`` call, in the same order:

- capture: :func:`fakeblock.capture.core.open_source` reads files, folders and cameras;
- detect: :func:`fakeblock.detect.core.detect` (full-frame) or, with tracking,
  :class:`fakeblock.detect.core.StreamTrackers`;
- classify: one :meth:`fakeblock.classify.model_runtime.EmotionModel.scores` call per frame with
  faces, the result made by :func:`fakeblock.classify.core.split_results`;
- display: per-track smoothing (:class:`fakeblock.display.smoothing.TrackSmoother`) and
  the results-file record (:func:`fakeblock.display.core.result_record`).

So ``analyze_video`` gives, frame for frame, what a lossless ``fakeblock up`` replay of the
same source writes to ``--results``.  Options take the names ``fakeblock up`` gives them
(:mod:`fakeblock.api.analyzer_options`).  The model and the Haar cascade load
once, when the analyzer is made.  An analyzer is not thread-safe: give each thread its own.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fakeblock.api.analyzer_options import OptionError, analyzer_settings, checked_color, video_settings
from fakeblock.api.analyzer_results import STILL_STREAM, Face, FrameResult
from fakeblock.capture.core import IMAGE_SUFFIXES, Source, frames_to_read, open_source
from fakeblock.classify.core import Pending, empty_result, split_results, stack_crops
from fakeblock.classify.model_runtime import EmotionModel
from fakeblock.common import wire
from fakeblock.common.errors import UserError
from fakeblock.detect.core import StreamTrackers, cascade_finder, detect, load_cascade
from fakeblock.display.core import result_record
from fakeblock.display.smoothing import TrackSmoother

LOGGER = logging.getLogger(__name__)
ImageInput = np.ndarray | str | os.PathLike[str]
VideoInput = str | int | os.PathLike[str]
# analyze_video's progress: called with the frames done so far and the frames it will read (None if unknown).
ProgressCallback = Callable[[int, int | None], None]
IMAGE_CHANNELS = (1, 3, 4)  # grey, BGR (or RGB), BGRA (or RGBA)
# OpenCV's conversion to BGR order of an RGB array, by its number of channels.
TO_BGR = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}


class ImageError(UserError, ValueError):
    """Not an image the analyzer reads: a non-uint8 array, a video path given to ``analyze``, ..."""


class Analyzer:
    """Faces and emotions of images and videos, in this process.

    ``Analyzer(**options)`` takes ``fakeblock up``'s detect and classify options by their
    field names: ``scale_factor``, ``min_neighbors``, ``min_size_px``, ``detect_scale``,
    ``tracking``, ``scan_cycle_frames``, ``opencv_threads``, ``model``, ``threads``.
    An unknown name raises ``TypeError`` listing the valid ones; a value outside the
    option's limits raises ``ValueError``; a missing or broken model file raises
    ``ModelError`` (a ``ValueError``).  Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, **options: Any) -> None:
        self.detect_config, self.classify_config = analyzer_settings(options)
        if self.detect_config.opencv_threads > 0:  # 0: OpenCV's own choice, as in the benchmarks' loop
            cv2.setNumThreads(self.detect_config.opencv_threads)
        self._cascade = load_cascade()
        self._model: EmotionModel | None = EmotionModel(self.classify_config.model,
                                                        threads=self.classify_config.threads)
        self._sources: set[Source] = set()
        LOGGER.debug("analyzer: model %s, tracking %s", self._model.path,
                     "on" if self.detect_config.tracking else "off")

    def analyze(self, image: ImageInput, *, color: str = "bgr") -> list[Face]:
        """The faces of one still image, largest first: a uint8 array or an image file's path.

        A still has no neighbours to track through, so every image gets the full-frame
        scan (the ``tracking off`` path) and its faces have no ``track``.  A file is read
        as ``fakeblock up --source`` reads it (a photo over 4096 px is shrunk, and boxes
        are in the shrunk image's pixels); an array is taken as it is, its channels in
        ``color`` order: ``"bgr"`` (OpenCV's, the default) or ``"rgb"`` (Pillow's,
        matplotlib's; RGBA with a fourth channel).  ``color`` changes nothing for a file or
        a grey array.  Raises ``ImageError`` (a ``ValueError``) for an array or file that is
        not an image, ``OptionError`` for another ``color``.
        """
        pixels = read_image(image, checked_color(color))
        self._open_model()
        boxes, crops = detect(pixels, self._cascade, self.detect_config, wire.MAX_FACES_PER_FRAME)
        info = wire.FrameInfo(STILL_STREAM, 0, 0.0, time.monotonic())
        record = result_record(self._classify(wire.Faces(info, tuple(boxes), crops)))
        return [Face.from_record(face) for face in record["faces"]]

    def analyze_video(self, source: VideoInput, *, stream: str | None = None, realtime: bool = False,
                      max_frames: int | None = None, progress: ProgressCallback | None = None
                      ) -> Iterator[FrameResult]:
        """One :class:`FrameResult` per frame of a video file, image folder, camera index or stream URL.

        ``source`` is what ``fakeblock up --source`` takes (``demo`` too), ``stream``,
        ``realtime`` and ``max_frames`` are its options of those names.  The source opens
        now (a bad one raises ``UserError`` here, not at the first frame) and closes when
        the iteration ends, is closed, or the analyzer closes.  Tracks and smoothing start
        afresh for each call.  Every frame read is analysed: nothing is dropped, so a
        camera yields as fast as the analysis goes.

        ``progress(done, total)``, when given, is called once per frame, as its result is
        ready and before it is yielded: ``done`` counts the frames so far (1, 2, ...) and
        ``total`` is the frames this call will read (the file's length or a folder's
        images, capped by ``max_frames``), or None when unknown (a camera, a stream, a
        container that does not say).  A container's length can be an estimate, and a
        folder's image that does not decode is skipped, so the last ``done`` may miss it.
        """
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be a callable (done, total), not {type(progress).__name__}")
        settings = video_settings({"stream": stream, "realtime": realtime, "max_frames": max_frames})
        self._open_model()
        opened = open_source(os.fspath(source) if not isinstance(source, int) else str(source),
                             realtime=settings.realtime)
        try:
            name = opened.stream_name(settings.stream)
        except UserError:
            opened.close()
            raise
        self._sources.add(opened)
        return self._results(opened, name, settings.max_frames, progress)

    def _results(self, source: Source, stream: str, max_frames: int | None,
                 progress: ProgressCallback | None = None) -> Iterator[FrameResult]:
        """Each frame's result, told to ``progress`` first; the source closes however the iteration ends."""
        total = frames_to_read(source.frame_count, max_frames)
        trackers = StreamTrackers(self.detect_config, cascade_finder([self._cascade], self.detect_config)) \
            if self.detect_config.tracking else None
        smoother = TrackSmoother()
        try:
            for frame_number, (pixels, position_s) in enumerate(islice(source.frames(), max_frames)):
                info = wire.FrameInfo(stream, frame_number, position_s, time.monotonic())
                result = self._frame_result(info, pixels, trackers, smoother)
                if progress is not None:
                    progress(frame_number + 1, total)
                yield result
        finally:
            source.close()
            self._sources.discard(source)

    def _frame_result(self, info: wire.FrameInfo, pixels: np.ndarray, trackers: StreamTrackers | None,
                      smoother: TrackSmoother) -> FrameResult:
        """One frame through detect, classify and the display's smoothing, as a results line."""
        if trackers is None:
            boxes, crops = detect(pixels, self._cascade, self.detect_config, wire.MAX_FACES_PER_FRAME)
            tracks: list[int] = []
        else:
            found = trackers.detect(info.stream, info.frame_number, pixels, wire.MAX_FACES_PER_FRAME)
            assert found is not None  # frames come in order from the first: every one is tracked
            boxes, tracks, crops = found
        result = self._classify(wire.Faces(info, tuple(boxes), crops, tuple(tracks)))
        raw = None
        if result.tracks:
            raw, result = result, smoother.smooth(result)
        return FrameResult.from_record(result_record(result, raw))

    def _classify(self, faces: wire.Faces) -> wire.Result:
        """As the classify stage does: a frame without faces skips the model, else its faces are one batch."""
        if not faces.boxes:
            return empty_result(faces)
        batch = [Pending(faces, time.monotonic())]
        return split_results(batch, self._open_model().scores(stack_crops(batch)))[0]

    def _open_model(self) -> EmotionModel:
        if self._model is None:
            raise RuntimeError("this Analyzer is closed")
        return self._model

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._model is None

    def close(self) -> None:
        """Close every source still open and let the model go; the analyzer cannot be used after."""
        for source in list(self._sources):
            source.close()
        self._sources.clear()
        self._model = None

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()


def analyze(source: ImageInput | VideoInput, *, color: str = "bgr", stream: str | None = None,
            realtime: bool = False, max_frames: int | None = None, **options: Any) -> list[Face] | list[FrameResult]:
    """What an ``Analyzer(**options)`` finds in ``source``, in one call that closes the analyzer after.

    An array or an image file's path gives :meth:`Analyzer.analyze`'s list of faces (an
    array's channels in ``color`` order); anything else ``--source`` takes (a video file, a
    folder, ``demo``, a stream URL, a camera index) gives the list of every frame's result
    that :meth:`Analyzer.analyze_video` yields, with its ``stream``, ``realtime`` and
    ``max_frames``, which an image leaves unused.  A camera never ends, so it needs
    ``max_frames``.  For several images, or a video's frames as they come, keep an
    :class:`Analyzer`: each call here loads the model again.
    """
    checked_color(color)
    if not isinstance(source, np.ndarray) and max_frames is None and is_camera(source):
        raise OptionError(f"camera {source} never ends: give max_frames, or iterate Analyzer().analyze_video")
    with Analyzer(**options) as analyzer:
        if isinstance(source, np.ndarray) or (not isinstance(source, int) and is_image_path(source)):
            return analyzer.analyze(source, color=color)
        return list(analyzer.analyze_video(source, stream=stream, realtime=realtime, max_frames=max_frames))


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True for the path of an image file, which :meth:`Analyzer.analyze` reads (not for a folder)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES and not Path(path).is_dir()


def is_camera(source: VideoInput) -> bool:
    """True for a camera index, as a number or as the digits ``--source`` takes."""
    return isinstance(source, int) or os.fspath(source).strip().isdigit()


def read_image(image: ImageInput, color: str = "bgr") -> np.ndarray:
    """The BGR pixels of an array in ``color`` order (checked) or of an image file (read as ``--source`` reads it)."""
    if isinstance(image, np.ndarray):
        return bgr_order(checked_array(image), color)
    if isinstance(image, (str, os.PathLike)):
        return read_image_file(Path(image))
    raise TypeError(f"analyze() takes a uint8 numpy array or an image path, not {type(image).__name__}")


def bgr_order(image: np.ndarray, color: str) -> np.ndarray:
    """A checked image with its channels in OpenCV's order: an RGB(A) one swapped, BGR(A) and grey as they are."""
    if color == "bgr" or image.ndim == 2 or image.shape[2] not in TO_BGR:
        return image
    return cv2.cvtColor(image, TO_BGR[image.shape[2]])


def checked_array(image: np.ndarray) -> np.ndarray:
    """``image`` if it is a non-empty uint8 grey, BGR or BGRA image, else ``ImageError``."""
    shaped = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in IMAGE_CHANNELS)
    if image.dtype != np.uint8 or not shaped or image.size == 0:
        raise ImageError(f"expected a uint8 image (H x W x 3 BGR, H x W x 4 BGRA or H x W grey), "
                         f"not a {image.dtype} array of shape {image.shape}")
    return image


def read_image_file(path: Path) -> np.ndarray:
    """One image file's BGR pixels; ``UserError`` when missing, ``ImageError`` when not an image."""
    if path.suffix.lower() not in IMAGE_SUFFIXES or path.is_dir():
        raise ImageError(f"{path}: not an image file ({', '.join(IMAGE_SUFFIXES)}); "
                         f"analyze_video reads videos, folders and cameras")
    with open_source(str(path)) as source:
        for pixels, _position_s in source:
            return pixels
    raise ImageError(f"{path}: cannot decode image")

"""Where released frames go: a JSON Lines results file, an mp4 recording, a window, the web view.

Every output is opened when the stage starts, so a bad path, a missing screen or a busy
port is one clear :class:`UserError` before any frame flows, and every output is closed
(flushed) on the way out, however the stage stops.

With several cameras (``expected_streams`` > 1) the results file holds every stream's
lines, each marked with its stream; each stream gets its own recording (``clip-door.mp4``)
and its own window, and the web view shows the first stream seen.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import cv2
import numpy as np

from fakeblock.common import wire
from fakeblock.common.config import DisplayConfig
from fakeblock.common.errors import UserError
from fakeblock.display.core import DEFAULT_FPS, fps_from_positions, result_record
from fakeblock.display.order import Joined
from fakeblock.display.overlay import draw_overlay, faces_of
from fakeblock.display.results_file import ResultsWriter
from fakeblock.display.screen import screen_available
from fakeblock.display.web import WebView

LOGGER = logging.getLogger(__name__)
VIDEO_CODEC = "mp4v"
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Escape


class VideoRecorder:
    """An mp4 (``mp4v``) of the annotated frames, sized by the first frame.

    The frame rate comes from the first two frames' source positions (``DEFAULT_FPS``
    when they say nothing useful), so the first frame is held until the second arrives.
    """

    def __init__(self, path: str):
        self.path = str(Path(path).expanduser())
        folder = Path(self.path).resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise UserError(f"cannot record to {path}: folder {folder} is missing or not writable")
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size_px: tuple[int, int] | None = None
        self._first: tuple[np.ndarray, wire.FrameInfo] | None = None

    def write(self, image: np.ndarray, info: wire.FrameInfo) -> None:
        """Add one annotated BGR frame (resized to the recording's size when it differs)."""
        if self._writer is None:
            if self._first is None:
                self._first = (image, info)
                return
            first_image, first_info = self._first
            self._open(first_image, fps_from_positions(first_info, info))
        self._put(image)

    def _open(self, first_image: np.ndarray, fps: float) -> None:
        # Encoders want even sizes; losing one pixel row or column is invisible.
        height, width = first_image.shape[:2]
        self._size_px = (max(2, width - width % 2), max(2, height - height % 2))
        self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter.fourcc(*VIDEO_CODEC), fps, self._size_px)
        if not self._writer.isOpened():
            raise UserError(f"cannot record to {self.path}: OpenCV has no {VIDEO_CODEC} encoder for it")
        LOGGER.info("recording %dx%d at %.2f fps to %s", *self._size_px, fps, self.path)
        self._put(first_image)
        self._first = None

    def _put(self, image: np.ndarray) -> None:
        writer, size_px = self._writer, self._size_px
        assert writer is not None and size_px is not None  # _open sets both before the first frame comes here
        if (image.shape[1], image.shape[0]) != size_px:
            image = cv2.resize(image, size_px, interpolation=cv2.INTER_AREA)
        writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Write a lone first frame (at ``DEFAULT_FPS``) and finish the file."""
        if self._writer is None and self._first is not None:
            self._open(self._first[0], DEFAULT_FPS)
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            LOGGER.info("recorded %d frames to %s", self.frames, self.path)


class Window:
    """OpenCV windows, one per stream; ``q``, Escape or closing a window sets :attr:`quit_requested`."""

    def __init__(self, title: str):
        # Without a screen Qt aborts the whole process instead of raising: check first.
        if not screen_available():
            raise UserError("no screen for the window output (DISPLAY is not set); use the web view instead")
        self.title = title
        self.quit_requested = False
        self._shown_titles: set[str] = set()
        try:
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
        except cv2.error as error:
            raise UserError(f"cannot open a window: {error.err or error}") from None

    def show(self, image: np.ndarray, stream: str = "") -> None:
        """Show an annotated frame (in the stream's own window when ``stream`` is named) and handle keys."""
        title = f"{self.title}: {stream}" if stream else self.title
        cv2.imshow(title, image)
        self._shown_titles.add(title)
        self.pump()

    def pump(self) -> None:
        """Let the GUI process events (call often, even without new frames); notice a quit."""
        key = cv2.waitKey(1)
        closed = any(cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) < 1 for title in self._shown_titles)
        if (key & 0xFF) in QUIT_KEYS or closed:
            if not self.quit_requested:
                LOGGER.info("window closed or q pressed: stopping")
            self.quit_requested = True

    def close(self) -> None:
        """Destroy the windows (events pumped once so they really disappear)."""
        for title in self._shown_titles | {self.title}:
            cv2.destroyWindow(title)
        cv2.waitKey(1)


def stream_path(path: str, stream: str) -> str:
    """``clip.mp4`` -> ``clip-<stream>.mp4`` (the name made safe for a file name)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", stream)
    target = Path(path)
    return str(target.with_name(f"{target.stem}-{safe}{target.suffix}"))


class StreamRecorders:
    """The recording: one file, or with several streams one file per stream (``clip-door.mp4``)."""

    def __init__(self, path: str, several_streams: bool):
        self.path, self.several_streams = path, several_streams
        VideoRecorder(path)  # checks the folder now, so a bad path fails before any frame flows
        self.recorders: dict[str, VideoRecorder] = {}

    def write(self, image: np.ndarray, info: wire.FrameInfo) -> None:
        """Add a frame to its stream's recording."""
        recorder = self.recorders.get(info.stream)
        if recorder is None:
            path = stream_path(self.path, info.stream) if self.several_streams else self.path
            recorder = self.recorders[info.stream] = VideoRecorder(path)
        recorder.write(image, info)

    @property
    def frames(self) -> int:
        """Frames recorded, over every stream."""
        return sum(recorder.frames for recorder in self.recorders.values())

    def close(self) -> None:
        """Finish every file."""
        for recorder in self.recorders.values():
            recorder.close()


class Outputs:
    """Every output the configuration asks for, fed one released frame at a time."""

    def __init__(self, config: DisplayConfig):
        self.results_file = self.recorder = self.window = self.web = None
        self.several_streams = config.expected_streams > 1
        self._web_stream: str | None = None
        try:
            # The results file first: it is the output a user can least afford to lose.
            self.results_file = ResultsWriter(config.results, config.resume) if config.results else None
            several = config.expected_streams > 1
            self.recorder = StreamRecorders(_recording_path(config), several) if config.record else None
            self.web = WebView(config.web_host, config.web_port) if "web" in config.outputs else None
            self.window = Window(config.window_title) if "window" in config.outputs else None
        except BaseException:
            self.close()
            raise

    @property
    def needs_pixels(self) -> bool:
        """True when some output draws frames (otherwise frames are not worth keeping)."""
        return any(output is not None for output in (self.recorder, self.window, self.web))

    @property
    def quit_requested(self) -> bool:
        """True once the user closed the window or pressed q."""
        return self.window is not None and self.window.quit_requested

    def emit(self, joined: Joined, show: bool = True) -> bool:
        """Write the result and draw, record, show and serve the frame; True when a frame was drawn.

        ``show`` False skips the window and web view (a live stage catching up shows only
        the newest frame) but still records every frame.
        """
        if joined.result is not None:
            if self.results_file is not None:
                self.results_file.write(joined.result, joined.raw_result)
            if self.web is not None:
                self.web.publish_record(result_record(joined.result, joined.raw_result))
        shown = show and (self.window is not None or self.web is not None)
        if joined.frame is None or not (self.recorder is not None or shown):
            return False
        image = draw_overlay(joined.frame.pixels, faces_of(joined.result))
        if self.recorder is not None:
            self.recorder.write(image, joined.frame.info)
        if show and self.window is not None:
            self.window.show(image, joined.stream if self.several_streams else "")
        # The web view has one picture: with several cameras it shows the first stream seen.
        self._web_stream = self._web_stream or joined.stream
        if show and self.web is not None and joined.stream == self._web_stream:
            self.web.publish_image(image)
        return True

    def idle(self) -> None:
        """Keep the window responsive between frames; flush results so readers see progress."""
        if self.window is not None:
            self.window.pump()
        if self.results_file is not None:
            self.results_file.flush_if_due()

    def close_files(self) -> None:
        """Finish the results file and the recording now (the window and web view stay)."""
        files, (self.results_file, self.recorder) = (self.results_file, self.recorder), (None, None)
        self._close_each(files)

    def close(self) -> None:
        """Close everything that was opened, results file first; one output's failure never skips another."""
        self._close_each((self.results_file, self.recorder, self.window, self.web))

    @staticmethod
    def _close_each(outputs) -> None:
        """Close each output; a user's error (the results file's disk filled) is raised once all are closed."""
        failure: UserError | None = None
        for output in outputs:
            if output is None:
                continue
            try:
                output.close()
            except UserError as error:
                failure = failure or error
            except Exception:  # one broken output must not lose the others' data
                LOGGER.exception("closing %s failed", type(output).__name__)
        if failure is not None:
            raise failure


def _recording_path(config: DisplayConfig) -> str:
    """Where to record: the chosen file, or after a restart a new one beside it (mp4 cannot be appended)."""
    assert config.record is not None
    if not config.resume:
        return config.record
    path = Path(config.record).expanduser()
    resumed = str(path.with_name(f"{path.stem}-resumed{path.suffix}"))
    LOGGER.warning("the display restarted: %s cannot be continued (an mp4 cannot be appended); "
                   "the frames from now on are recorded in %s", config.record, resumed)
    return resumed

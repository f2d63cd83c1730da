"""The display stage: results and frames in, results file, recording, window and web view out.

It binds two PULL sockets: ``results`` (every classify worker pushes one ``Result`` per
frame) and ``display_frames`` (capture pushes the ``Frame`` pixels, when some output
needs them, and always one ``EndOfStream`` per stream).  The :class:`FrameOrderer`
joins them by ``(stream, frame number)`` and releases frames in order to the outputs.

Exit codes:

- ``0``: every stream that ended has all of its frames written (lossless: the results
  file has exactly ``frame_count`` lines per stream), or a ``stop`` order came and what
  was in flight has been drained (up to the runtime's ``STOP_GRACE_S``), flushed and closed.
  A finished lossless replay with the web view first keeps serving its last frame and
  totals (the heartbeat's ``complete`` counter says the run is done) until a finish or
  stop order or SIGTERM, then exits 0.
- ``QUIT_EXIT_CODE`` (3): the user pressed q or Escape in the window, or closed it; the
  supervisor should stop the whole pipeline rather than restart the display.
- A ``UserError`` (bad results or recording path, busy web port, no screen) is raised
  before any message is read; the process wrapper turns it into exit code 2.
"""

from __future__ import annotations

import logging
import time

import zmq

from fakeblock.common import wire
from fakeblock.common.config import DisplayConfig
from fakeblock.common.counters import (
    COMPLETE,
    DROPPED,
    FRAMES_IGNORED,
    FRAMES_IN,
    FRAMES_OUT,
    MISSING_PIXELS,
    PENDING,
    REFUSED,
    RESULTS_IN,
    RESULTS_WRITTEN,
    SKIPPED,
    UNEXPECTED,
    UNMATCHED,
)
from fakeblock.common.endpoints import Endpoints
from fakeblock.common.errors import USER_QUIT_EXIT_CODE
from fakeblock.common.runtime import HEARTBEAT_INTERVAL_S, STOP_GRACE_S, StageRuntime
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.sockets import DISPLAY_FRAMES_HWM, RESULTS_HWM
from fakeblock.common.wording import plural
from fakeblock.display.core import LatencyWindow
from fakeblock.display.order import FrameOrderer, Joined
from fakeblock.display.outputs import Outputs
from fakeblock.display.smoothing import TrackSmoother
from fakeblock.display.web import WebView

LOGGER = logging.getLogger(__name__)
QUIT_EXIT_CODE = USER_QUIT_EXIT_CODE
# Lossless: while this many frames wait for their results, leave further frames in the
# socket; capture then blocks on its PUSH, which holds the whole pipeline's memory flat.
MAX_PENDING_FRAMES = 64
MAX_MESSAGES_PER_READ = 64
# Draining after a stop ends early once nothing has come for this long.
DRAIN_QUIET_S = 0.5


def run_display(config: DisplayConfig, endpoints: Endpoints, worker: int = 0,
                security: SecurityConfig | None = None) -> int:
    """Run the display until every ended stream is written, a stop order, or the user quits."""
    runtime = StageRuntime("display", worker, endpoints, security)
    outputs = None
    try:
        outputs = Outputs(config)
        results = runtime.socket(zmq.PULL, RESULTS_HWM, bind_to=endpoints.results)
        frames = runtime.socket(zmq.PULL, DISPLAY_FRAMES_HWM, bind_to=endpoints.display_frames)
        return DisplayLoop(runtime, config, outputs, results, frames).run()
    finally:
        if outputs is not None:
            outputs.close()
        runtime.close()


def completion_line(results_written: int, finish_requested: bool) -> str | None:
    """``every stream is complete; 464 results written``, or None when a finish order (Ctrl-C) ended
    the streams early: they are not complete, and the supervisor's "interrupted" line says so."""
    if finish_requested:
        return None
    return f"every stream is complete; {plural(results_written, 'result')} written"


class DisplayLoop:
    """Receive, join and order, emit; one instance per run of the stage."""

    def __init__(self, runtime: StageRuntime, config: DisplayConfig, outputs: Outputs, results: zmq.Socket,
                 frames: zmq.Socket):
        self.runtime, self.outputs, self.live = runtime, outputs, config.live
        self.results_socket, self.frames_socket = results, frames
        self.orderer = FrameOrderer(config.live, outputs.needs_pixels, expected_streams=config.expected_streams)
        written = outputs.results_file.written_frames if outputs.results_file is not None else {}
        for stream, next_number in written.items():  # a restarted display goes on after them
            self.orderer.resume_stream(stream, next_number, rebuild=not config.live)
        self.latency = LatencyWindow()
        self.smoother = TrackSmoother()
        self.draining = False
        self._counters_due_s = 0.0

    def run(self) -> int:
        """The main loop; returns the stage's exit code."""
        while not self.runtime.stop_requested:
            self._step()
            if self.outputs.quit_requested:
                self._publish_counters(force=True)
                return QUIT_EXIT_CODE
            if self.orderer.finished():
                # Every line is written: a reader of the results sees the end now, and a disk
                # that fails on the last flush fails the run before it is reported complete.
                self.outputs.close_files()
                line = completion_line(int(self.runtime.counters.get(RESULTS_WRITTEN, 0)),
                                       self.runtime.finish_requested)
                if line is not None:
                    LOGGER.info("%s", line)
                self.runtime.counters[COMPLETE] = 1
                self._publish_counters(force=True)
                if self.outputs.web is not None and not self.live:
                    self._serve_until_stopped(self.outputs.web)
                return 0
        return self._drain()

    def _serve_until_stopped(self, web: WebView) -> None:
        """Keep the web view of a finished replay up, with its last frame, until ordered to end."""
        web.mark_done()
        self.runtime.heartbeat(force=True)  # the supervisor learns at once that the run is complete
        LOGGER.info("replay done; the web view stays at http://%s:%d/; Ctrl-C to stop", web.host, web.port)
        while not (self.runtime.stop_requested or self.runtime.finish_requested):
            self.runtime.poll([])  # control orders and heartbeats only

    def _step(self) -> bool:
        """Wait once for input, take what came, emit what is due; True when input arrived."""
        sockets = [self.results_socket]
        if self._accepting_frames():
            sockets.append(self.frames_socket)
        ready = self.runtime.poll(sockets)
        for socket in ready:
            self._read(socket)
        self._emit(self.orderer.release(time.monotonic()))
        self.outputs.idle()
        self._publish_counters()
        return bool(ready)

    def _accepting_frames(self) -> bool:
        return self.live or self.draining or self.orderer.pending_frames < MAX_PENDING_FRAMES

    def _read(self, socket: zmq.Socket) -> None:
        for _ in range(MAX_MESSAGES_PER_READ):
            if socket is self.frames_socket and not self._accepting_frames():
                return
            message = self.runtime.receive(socket)  # malformed: counted and dropped by the runtime
            if message is None:
                return
            self._accept(message, time.monotonic())

    def _accept(self, message: wire.Message, now_s: float) -> None:
        if isinstance(message, wire.Result):
            self.runtime.count(RESULTS_IN)
            self.latency.add(message.info.captured_s, now_s)
            self.orderer.add_result(message, now_s)
        elif isinstance(message, wire.Frame):
            self.runtime.count(FRAMES_IN)
            if self.orderer.needs_frames:
                self.orderer.add_frame(message, now_s)
            else:
                self.runtime.count(FRAMES_IGNORED)  # no output draws: pixels are not worth keeping
        elif isinstance(message, wire.StreamStart):
            if self.orderer.announce(message.stream, message.frames_total):
                LOGGER.debug("stream %s announced (%s frames)", message.stream, message.frames_total or "unknown")
        elif isinstance(message, wire.EndOfStream):
            if self.orderer.end_stream(message.stream, message.frame_count, now_s):
                LOGGER.info("stream %s ended after %s", message.stream, plural(message.frame_count, "frame"))
            else:
                LOGGER.warning("ignored an end of stream %s after %d frames: not announced, ended already, "
                               "or contradicting frames written or announced", message.stream, message.frame_count)
        else:
            self.runtime.count(UNEXPECTED)

    def _emit(self, released: list[Joined]) -> None:
        # A live display that fell behind shows only the newest frame (recording keeps all).
        newest = max((index for index, joined in enumerate(released) if joined.frame is not None), default=-1)
        for index, joined in enumerate(released):
            if joined.result is not None and joined.result.tracks:
                joined.raw_result, joined.result = joined.result, self.smoother.smooth(joined.result)
            if joined.silent:  # written before a restart: it only rebuilt the smoothing
                continue
            self.outputs.emit(joined, show=not self.live or index == newest)
            if joined.frame is not None:
                self.runtime.count(FRAMES_OUT)
            if joined.result is not None:
                self.runtime.count(RESULTS_WRITTEN)

    def _drain(self) -> int:
        """After a stop order: take what is still in flight, then write out everything held."""
        self.draining = True
        started_s = quiet_since_s = time.monotonic()
        while time.monotonic() - started_s < STOP_GRACE_S and not self.orderer.finished():
            if self._step():
                quiet_since_s = time.monotonic()
            elif time.monotonic() - quiet_since_s >= DRAIN_QUIET_S or self.outputs.quit_requested:
                break
        self._emit(self.orderer.flush())
        LOGGER.info("stopped; %d results written", self.runtime.counters.get(RESULTS_WRITTEN, 0))
        self._publish_counters(force=True)
        return 0

    def _publish_counters(self, force: bool = False) -> None:
        """Copy ordering counters and latency percentiles into the heartbeat, as often as heartbeats go."""
        now_s = time.monotonic()
        if not force and now_s < self._counters_due_s:
            return
        self._counters_due_s = now_s + HEARTBEAT_INTERVAL_S
        orderer = self.orderer
        self.runtime.counters.update(self.latency.counters())
        self.runtime.counters.update({SKIPPED: orderer.skipped, UNMATCHED: orderer.unmatched, REFUSED: orderer.refused,
                                      MISSING_PIXELS: orderer.missing_pixels,
                                      DROPPED: orderer.unmatched + orderer.discarded, PENDING: orderer.pending})

"""The capture stage: read a source, stamp each frame, send it to detect (and to display).

Links and what happens when they are full:

- ``frames`` (we bind ROUTER, detect workers connect DEALER, ``capture/lease_link.py``):
  the stream is leased to one detect worker at a time (``capture/leases.py``), so all its
  frames reach the worker that keeps its tracks, however many replicas connect.  The
  lease is sticky while its holder keeps saying it is ready; a holder that disconnects,
  or falls silent (live: ``LEASE_TIMEOUT_S``; lossless: ``LOSSLESS_LEASE_TIMEOUT_S``),
  loses it and the next frame goes to another worker, whose tracks start afresh.  In
  lossless mode a send blocks until the holder has room (or, with none, until a worker
  says it is ready), so a slow pipeline slows the replay and nothing is lost; in live
  mode a send that finds no room drops the frame (counted as ``dropped``, its frame
  number left as a hole) so the pipeline always works on a fresh frame.
- ``display_frames`` (we connect PUSH, display binds PULL): carries the same frames for the
  overlay and always the final ``EndOfStream``.  It blocks in lossless mode and drops (as
  ``display_dropped``) in live mode, like the frames link.
"""

from __future__ import annotations

import logging
import math
import time
from itertools import islice

import zmq

from fakeblock.capture.core import Source, frames_to_read, open_source
from fakeblock.capture.flow import FLOW_LIVE, RateMeter, choose_flow_mode
from fakeblock.capture.lease_link import LeaseLink
from fakeblock.capture.leases import LOSSLESS_LEASE_TIMEOUT_S, Leases
from fakeblock.common import wire
from fakeblock.common.config import CaptureConfig
from fakeblock.common.counters import DISPLAY_DROPPED, DROPPED, FPS, FRAMES_IN, FRAMES_OUT, FRAMES_TOTAL
from fakeblock.common.endpoints import Endpoints
from fakeblock.common.errors import UserError
from fakeblock.common.runtime import LEASE_TIMEOUT_S, POLL_INTERVAL_MS, STOP_GRACE_S, StageRuntime
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.sockets import DISPLAY_FRAMES_HWM
from fakeblock.common.wording import frame_rate, plural

LOGGER = logging.getLogger(__name__)
# Live: one or two queued frames per worker keep latency near one frame time.
LIVE_FRAMES_HWM = 2
# Lossless: a few frames in flight keep every detect worker busy without hoarding memory.
LOSSLESS_FRAMES_HWM = 4
# Lossless links keep unsent frames this long at exit so downstream can take them all;
# live links use the runtime's short default, since stale frames are worth nothing.
LOSSLESS_LINGER_MS = 5000
# libzmq drops an ipc connection whose reader is stalled at its high-water mark the moment
# the writer hangs up, losing every message still in that reader's buffers (tcp is not
# affected; linger does not help).  So a finished source stays connected until the
# supervisor's stop, sent once the display has every result, or this long.
END_DRAIN_S = 10.0
# Live: how long to hold the first frame while detect workers connect and say they are ready.
FIRST_READER_WAIT_S = 5.0


def run_capture(config: CaptureConfig, endpoints: Endpoints, worker: int = 0,
                security: SecurityConfig | None = None) -> int:
    """Stream ``config.source`` into the pipeline until it ends or a stop arrives; returns 0."""
    # A --live file makes no sense unpaced (nearly every frame would be dropped), so pace it.
    source = open_source(config.source, realtime=config.realtime or bool(config.live))
    live = choose_flow_mode(source.live, config.live) == FLOW_LIVE
    stream = _stream_name(config, source)
    LOGGER.info("%s as stream %r, %s, %s", config.source, stream,
                "live" if live else "lossless", frame_rate(source.fps))
    runtime = StageRuntime("capture", worker, endpoints, security)
    frames_total = frames_to_read(source.frame_count, config.max_frames)
    if frames_total is not None:
        runtime.counters[FRAMES_TOTAL] = frames_total  # for progress and the "interrupted" line
    linger_ms = None if live else LOSSLESS_LINGER_MS
    leases = Leases(stream, LEASE_TIMEOUT_S if live else LOSSLESS_LEASE_TIMEOUT_S)
    frames = LeaseLink(runtime, endpoints.frames, LIVE_FRAMES_HWM if live else LOSSLESS_FRAMES_HWM, linger_ms, leases)
    display = runtime.socket(zmq.PUSH, DISPLAY_FRAMES_HWM, connect_to=endpoints.display_frames,
                             linger_ms=linger_ms)
    try:
        # Announced on the link its end follows, before any frame: the display writes
        # results only for streams a capture announced.
        runtime.send(display, wire.StreamStart(stream, frames_total), until_finish=True)
        if live:
            _wait_for_a_reader(runtime, frames, FIRST_READER_WAIT_S)
        epoch = config.epoch
        while True:
            frame_count = _pump(runtime, source, stream, live, frames,
                                display if config.send_frames_to_display else None, config.max_frames, epoch)
            if not _rewind_due(runtime, live, epoch):
                _send_end_of_stream(runtime, display, wire.EndOfStream(stream, frame_count))
                LOGGER.info("%s %s, %s sent, %d dropped", stream,
                            "stopped" if runtime.finish_requested else "done",
                            plural(runtime.counters.get(FRAMES_OUT, 0), "frame"), runtime.counters.get(DROPPED, 0))
                _wait(runtime, END_DRAIN_S)
                if not _rewind_due(runtime, live, epoch):
                    break
            # A crashed stage lost frames in flight: send the whole stream again, in a new epoch.
            epoch = runtime.rewind_epoch
            LOGGER.warning("%s starts again from its first frame (epoch %d) for work a crash lost",
                           stream, epoch)
            source.close()
            source = open_source(config.source, realtime=config.realtime or bool(config.live))
            runtime.send(display, wire.StreamStart(stream, frames_total), until_finish=True)
    finally:
        source.close()
        if runtime.stop_requested:
            # A stop comes once the display has every result, or once the drain gave up on
            # what is stuck downstream: nothing unsent is worth the lossless linger then.
            for link in (frames.socket, display):
                link.setsockopt(zmq.LINGER, 0)
        runtime.close()
    return 0


def _rewind_due(runtime: StageRuntime, live: bool, epoch: int) -> bool:
    """True when a lossless source was ordered to start again in a newer epoch (and not to stop)."""
    return not live and runtime.rewind_epoch > epoch and not (runtime.stop_requested or runtime.finish_requested)


def _stream_name(config: CaptureConfig, source: Source) -> str:
    """``--stream`` if given, else the source's name; the source is closed when the name is refused."""
    try:
        return source.stream_name(config.stream)
    except UserError:
        source.close()
        raise


def _pump(runtime: StageRuntime, source: Source, stream: str, live: bool, frames: LeaseLink,
          display: zmq.Socket | None, max_frames: int | None, epoch: int = 0) -> int:
    """Send frames until the source ends, ``max_frames`` are read or a stop.

    Stops early, too, when a rewind to a newer epoch than ``epoch`` is ordered.
    Returns the end-of-stream frame count: one past the last frame number sent.  Lossless,
    that is the number of frames sent; live, the numbers below it that are missing are the
    dropped frames, which the display skips as holes.
    """
    frame_count = 0
    rate = RateMeter()
    readings = islice(source.frames(wait=lambda delay_s: _wait(runtime, delay_s)), max_frames)
    for frame_number, (pixels, position_s) in enumerate(readings):
        if runtime.stop_requested or runtime.finish_requested or runtime.rewind_epoch > epoch:
            break
        runtime.count(FRAMES_IN)
        frame = wire.Frame(wire.FrameInfo(stream, frame_number, position_s, time.monotonic(), epoch), pixels, live)
        if not frames.send(frame, block=not live, until_finish=True):
            if not live:  # a blocked lossless send only gives up when a stop or finish was ordered
                break
            runtime.count(DROPPED)
            continue
        frame_count = frame_number + 1
        runtime.count(FRAMES_OUT)
        runtime.counters[FPS] = rate.tick()
        if display is not None and not runtime.send(display, frame, block=not live):
            runtime.count(DISPLAY_DROPPED)
        runtime.poll([], 0)  # heartbeats and stop orders
    return frame_count


def _wait_for_a_reader(runtime: StageRuntime, frames: LeaseLink, timeout_s: float) -> None:
    """Live: hold the first frame until a detect worker says it is ready for this stream's
    lease, so start-up does not show up as dropped frames."""
    deadline_s = time.monotonic() + timeout_s
    while not runtime.stop_requested and time.monotonic() < deadline_s:
        if frames.has_reader():
            return
        runtime.poll([], 0)
        frames.socket.poll(POLL_INTERVAL_MS, zmq.POLLIN)
    LOGGER.info("no detect worker ready after %.0f s; starting anyway", timeout_s)


def _wait(runtime: StageRuntime, delay_s: float) -> None:
    """Sleep (for realtime pacing, or while downstream drains) yet answer heartbeats and stop orders."""
    deadline_s = time.monotonic() + delay_s
    while not runtime.stop_requested:
        remaining_ms = math.ceil((deadline_s - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            return
        runtime.poll([], min(remaining_ms, POLL_INTERVAL_MS))


def _send_end_of_stream(runtime: StageRuntime, display: zmq.Socket, message: wire.EndOfStream) -> None:
    """Hand the display the frame count: blocking normally, for a bounded time after a stop."""
    if runtime.send(display, message, block=True):
        return
    deadline_s = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline_s:
        if display.poll(POLL_INTERVAL_MS, zmq.POLLOUT) and runtime.send(display, message, block=False):
            return
        runtime.heartbeat()
    LOGGER.warning("the display did not take the end of stream %r", message.stream)

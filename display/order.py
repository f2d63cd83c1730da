"""Join frames with their results and release them per stream in frame order.

Results come from several classify workers, so they arrive out of order, and frames come
on their own link; the :class:`FrameOrderer` holds both until frame ``n`` is complete and
every frame before it has been released.

- Lossless (recorded files): never skip.  Frame ``n`` waits for its result, and for its
  pixels when pixels are needed, however long that takes.
- Live (cameras): a hole older than ``max_wait_s`` is skipped and counted, a frame whose
  result never came is dropped as ``unmatched``, a result whose pixels never came is
  released without them.

One capture sends a stream's pixels and then its ``EndOfStream`` over one link, and
ZeroMQ keeps order on a link: once a later frame's pixels (or the end) have come, pixels
still missing were dropped at capture, and nobody waits for them any more.

Time is passed in as ``now_s`` so tests need no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fakeblock.common import wire

LIVE_MAX_WAIT_S = 1.0
# No peer can make the orderer hold more than this, whatever it sends: frame numbers this
# far past the next one due are refused (far more than the pipeline's queues ever hold in
# flight, which keeps a forged far-future number from stopping a live stream for good),
# and so are streams beyond this many.
MAX_REORDER_FRAMES = 4096
MAX_STREAMS = 64
# A stream's results may come before its announcement (they travel other links); a few are
# held, and none are written until the capture that owns the name announces it.
MAX_UNANNOUNCED_PENDING = 256


@dataclass
class Joined:
    """One frame number's result and pixels (either may be missing), as released."""

    stream: str
    frame_number: int
    arrived_s: float
    result: wire.Result | None = None
    frame: wire.Frame | None = None
    # The result as classify sent it, when ``result`` was smoothed over tracks since.
    raw_result: wire.Result | None = None
    # Written before the display restarted: released only to rebuild the smoothing.
    silent: bool = False


@dataclass
class _Stream:
    next_number: int = 0
    pending: dict[int, Joined] = field(default_factory=dict)
    frame_count: int | None = None
    ended_s: float | None = None
    newest_pixels: int = -1  # the highest frame number whose pixels have come
    announced: bool = False  # its capture said it exists (wire.StreamStart)
    silent_below: int = 0  # a restarted display: frames below this are in the file already
    frames_total: int | None = None  # the source's length, when its capture knew it

    @property
    def done(self) -> bool:
        """True once the stream has ended and every one of its frame numbers was released."""
        return self.frame_count is not None and self.next_number >= self.frame_count


class FrameOrderer:
    """Per-stream reorder buffer joining ``Result`` and ``Frame`` messages by frame number.

    Counters (plain attributes): ``skipped`` frame numbers that got no result line,
    ``unmatched`` frames dropped because their result never came (live), ``discarded``
    messages that came too late, twice, or past the end of their stream,
    ``missing_pixels`` results released without their frame although pixels were wanted,
    and ``refused`` messages no honest peer sends: frame numbers beyond the reorder
    window, a stream beyond ``MAX_STREAMS``, an end of stream below frames already written,
    an end or more than ``MAX_UNANNOUNCED_PENDING`` messages for a stream no capture
    announced.  Only announced streams are released.
    """

    def __init__(self, live: bool, needs_frames: bool, max_wait_s: float = LIVE_MAX_WAIT_S, expected_streams: int = 1,
                 announced: tuple[str, ...] = ()):
        self.live, self.needs_frames, self.max_wait_s = live, needs_frames, max_wait_s
        # Several cameras feed one display: one that ended before another's first frame came
        # must not end the run.
        self.expected_streams = expected_streams
        self.streams: dict[str, _Stream] = {}
        self.skipped = self.unmatched = self.discarded = self.missing_pixels = self.refused = 0
        for name in announced:  # streams known before any message (tests, a restarted display)
            self.announce(name)

    def add_result(self, result: wire.Result, now_s: float) -> bool:
        """Hold a result until its turn; False (and counted) when it is not wanted any more."""
        return self._add(result.info, "result", result, now_s)

    def add_frame(self, frame: wire.Frame, now_s: float) -> bool:
        """Hold a frame's pixels until its result comes; False (and counted) when not wanted."""
        return self._add(frame.info, "frame", frame, now_s)

    def announce(self, stream_name: str, frames_total: int | None = None) -> bool:
        """A capture announced ``stream_name`` (of ``frames_total`` frames when known): its
        frames may be released from now on."""
        stream = self._stream(stream_name)
        if stream is None:
            return False
        stream.announced = True
        stream.frames_total = frames_total if stream.frames_total is None else stream.frames_total
        return True

    def resume_stream(self, stream_name: str, next_number: int, rebuild: bool = False) -> None:
        """A restarted display: ``stream_name`` was announced and written up to ``next_number - 1``.

        ``rebuild`` (lossless, where the source sends the stream again from its first frame
        after a crash): those frames are released once more, marked ``silent``, so the
        smoothing that follows them is exactly what it was; otherwise they are skipped.
        """
        stream = self._stream(stream_name)
        if stream is None:
            return
        stream.announced = True
        if rebuild:
            stream.silent_below = max(stream.silent_below, next_number)
        else:
            stream.next_number = max(stream.next_number, next_number)

    def _stream(self, name: str) -> _Stream | None:
        """The stream's state, made on first sight unless ``MAX_STREAMS`` are known (then None, refused)."""
        stream = self.streams.get(name)
        if stream is None:
            if len(self.streams) >= MAX_STREAMS:
                self.refused += 1
                return None
            stream = self.streams[name] = _Stream()
        return stream

    def _in_window(self, stream: _Stream, number: int) -> bool:
        if number >= stream.next_number + MAX_REORDER_FRAMES:
            self.refused += 1
            return False
        return True

    def _add(self, info: wire.FrameInfo, slot: str, message, now_s: float) -> bool:
        stream = self._stream(info.stream)
        number = info.frame_number
        if stream is None or not self._in_window(stream, number):
            return False
        if not stream.announced and len(stream.pending) >= MAX_UNANNOUNCED_PENDING:
            self.refused += 1
            return False
        if slot == "frame":
            stream.newest_pixels = max(stream.newest_pixels, number)
        beyond_end = stream.frame_count is not None and number >= stream.frame_count
        entry = stream.pending.get(number)
        if number < stream.next_number or beyond_end or (entry is not None and getattr(entry, slot) is not None):
            self.discarded += 1
            return False
        if entry is None:
            entry = stream.pending[number] = Joined(info.stream, number, now_s)
        setattr(entry, slot, message)
        return True

    def end_stream(self, stream_name: str, frame_count: int, now_s: float) -> bool:
        """The source of ``stream_name`` sent frames ``0 .. frame_count-1`` and no more.

        Refused (and counted) when it contradicts what was seen: the stream was never
        announced, or frames up to ``next_number - 1`` were written already (a count below
        that is forged).  (The announced length is not a limit: a container's frame count
        is an estimate.)
        """
        stream = self.streams.get(stream_name)
        if stream is not None and stream.frame_count is not None:
            return False  # ended already: the first end stands
        if stream is None or not stream.announced or frame_count < stream.next_number:
            self.refused += 1
            return False
        stream.frame_count, stream.ended_s = frame_count, now_s
        for number in [number for number in stream.pending if number >= frame_count]:
            del stream.pending[number]
            self.discarded += 1
        return True

    def release(self, now_s: float) -> list[Joined]:
        """Every entry whose turn has come, per stream in frame order."""
        released: list[Joined] = []
        for stream in self.streams.values():
            if stream.announced:
                self._release_stream(stream, now_s, released)
        return released

    def _release_stream(self, stream: _Stream, now_s: float, released: list[Joined]) -> None:
        while not stream.done:
            entry = stream.pending.get(stream.next_number)
            if entry is not None and self._complete(stream, entry):
                self._pop_into(stream, released)
            elif self.live and self._stale(stream, entry, now_s):
                self._give_up_waiting(stream, entry, released)
            else:
                return

    def _pop_into(self, stream: _Stream, released: list[Joined]) -> None:
        entry = stream.pending.pop(stream.next_number)
        entry.silent = entry.frame_number < stream.silent_below
        if self.needs_frames and entry.frame is None:
            self.missing_pixels += 1
        released.append(entry)
        stream.next_number += 1

    def _complete(self, stream: _Stream, entry: Joined) -> bool:
        pixels_settled = (entry.frame is not None or not self.needs_frames or stream.frame_count is not None
                          or stream.newest_pixels > entry.frame_number)
        return entry.result is not None and pixels_settled

    def _stale(self, stream: _Stream, entry: Joined | None, now_s: float) -> bool:
        """True when the head of a live stream has kept later frames waiting for ``max_wait_s``."""
        if entry is not None:
            return now_s - entry.arrived_s >= self.max_wait_s
        waiting_since = [later.arrived_s for later in stream.pending.values()]
        if stream.ended_s is not None:
            waiting_since.append(stream.ended_s)
        return bool(waiting_since) and now_s - min(waiting_since) >= self.max_wait_s

    def _give_up_waiting(self, stream: _Stream, entry: Joined | None, released: list[Joined]) -> None:
        if entry is not None and entry.result is not None:
            self._pop_into(stream, released)  # the result is still worth a line, just without pixels
        elif entry is not None:
            self.unmatched += 1
            self.skipped += 1
            del stream.pending[stream.next_number]
            stream.next_number += 1
        else:
            target = min(stream.pending) if stream.pending else stream.frame_count
            # Nothing pending is only stale once the stream has ended, which sets frame_count.
            assert target is not None
            self.skipped += target - stream.next_number
            stream.next_number = target

    def flush(self) -> list[Joined]:
        """On stop: every held result in frame order despite holes; frames without one are unmatched."""
        released: list[Joined] = []
        for stream in self.streams.values():
            if not stream.announced:
                self.refused += len(stream.pending)  # nobody announced them: forged or lost
                stream.pending.clear()
                continue
            for number in sorted(stream.pending):
                entry = stream.pending.pop(number)
                if entry.result is None:
                    self.unmatched += 1
                else:
                    released.append(entry)
                stream.next_number = number + 1
        return released

    def finished(self) -> bool:
        """True once ``expected_streams`` streams were announced and every announced one has
        ended and been released.

        Results for a name no capture announced cannot keep a finished replay waiting, and
        a stream that was announced but has not ended keeps it going: a forged stream that
        ends early cannot cut a real one short.
        """
        announced = [stream for stream in self.streams.values() if stream.announced]
        return len(announced) >= self.expected_streams and all(stream.done for stream in announced)

    @property
    def pending_frames(self) -> int:
        """Frames (pixels) held in memory, for backpressure on the frames link."""
        return sum(entry.frame is not None for stream in self.streams.values() for entry in stream.pending.values())

    @property
    def pending(self) -> int:
        """Frame numbers held (with a result, pixels or both)."""
        return sum(len(stream.pending) for stream in self.streams.values())

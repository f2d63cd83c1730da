"""Every message fakeblock sends, and the one codec for all of them.

A message is a msgpack header (schema version, kind, stream, frame number, times, and for
pixel messages dtype and shape) followed, for messages that carry pixels, by the raw
pixel bytes as a frame of their own so they travel without copies.

Decoding is a trust boundary: :func:`decode` checks version, kind, field types, dtype
(allow-listed), bounded dimensions and an exact byte count before ``np.frombuffer``;
anything else raises ``ValueError``.  Never pickle, never msgpack-numpy.  Field checks are
in :mod:`fakeblock.common.wire_fields`.  The status messages (stage heartbeats and a
supervisor's answer to ``fakeblock status``) name a worker the same way in a heartbeat and
in a report (:class:`StageWorker`), with the same checks.  The lease message (:class:`Ready`: a
detect worker telling a capture it wants frames; ``capture/leases.py`` decides) is here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack
import numpy as np

from fakeblock.common import wire_fields as fields
from fakeblock.common.model_io import EMOTION_COUNT, FACE_SIZE_PX
from fakeblock.common.wire_fields import (
    ALLOWED_DTYPES,
    MAX_DIMENSION_PX,
    MAX_FACES_PER_FRAME,
    MAX_FRAME_NUMBER,
    MAX_HEADER_BYTES,
    MAX_PID,
    MAX_RESTARTS,
    MAX_WORKER_NUMBER,
)

__all__ = ["ALLOWED_DTYPES", "EMOTION_COUNT", "FACE_SIZE_PX", "MAX_DIMENSION_PX", "MAX_FACES_PER_FRAME",
           "MAX_HEADER_BYTES", "MAX_REPORTED_WORKERS", "SUPERVISOR_PHASES", "WORKER_STATES", "Control", "EndOfStream",
           "StreamStart", "Faces", "Frame", "FrameInfo", "Ready", "Result", "StageWorker", "Status", "StatusReport",
           "StatusRequest", "WorkerReport", "decode", "encode", "worker_name"]
# 3: a capture deals frames over a ROUTER to the detect DEALERs that say Ready (Ready);
# stages of another version cannot work with these, so their messages are refused.
SCHEMA_VERSION = 3
MAX_STREAM_NAME_CHARS = fields.MAX_NAME_CHARS
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # socket maxmsgsize and a whole message's limit; a 4096x4096x3 frame fits
MAX_MESSAGE_PARTS = 2  # a header, and pixels for frames and faces
MAX_EPOCH = 1 << 20


@dataclass(frozen=True)
class FrameInfo:
    """Identity and timing of one source frame, carried by every per-frame message.

    ``position_s`` is the frame's place in a file (seconds since start for live sources);
    ``captured_s`` is ``time.monotonic()`` at capture, for latency on one host.  ``epoch``
    counts how often the source started again from its first frame to make up for work a
    crashed stage lost (see ``REWIND``); detect's tracker follows one epoch at a time.
    """

    stream: str
    frame_number: int
    position_s: float
    captured_s: float
    epoch: int = 0


@dataclass(frozen=True)
class Frame:
    """A captured image (H x W x 3 BGR or H x W grey, uint8).

    ``live`` says the source is live (a camera, or a file paced like one): a stage that
    falls behind may do less for such a frame, never for a lossless one.
    """

    info: FrameInfo
    pixels: np.ndarray
    live: bool = False


@dataclass(frozen=True)
class Faces:
    """Faces found in one frame: boxes in source pixels and 48x48 grey crops (N may be 0).

    ``tracks`` holds each face's track id (stable while the face stays in view), or is
    empty when the frame was detected without tracking.
    """

    info: FrameInfo
    boxes: tuple[tuple[int, int, int, int], ...]
    crops: np.ndarray
    tracks: tuple[int, ...] = ()


@dataclass(frozen=True)
class Result:
    """Emotion scores (seven per face, in ``EMOTIONS`` order) for every face in one frame.

    ``tracks`` as in :class:`Faces`: one id per face, or empty without tracking.
    """

    info: FrameInfo
    boxes: tuple[tuple[int, int, int, int], ...]
    scores: tuple[tuple[float, ...], ...]
    tracks: tuple[int, ...] = ()


@dataclass(frozen=True)
class StreamStart:
    """A source announces a stream before its first frame, on the link its end will follow.

    The display writes results only for announced streams, so a result or an end for a
    name no capture uses is refused.  ``frames_total`` is the source's length when known.
    """

    stream: str
    frames_total: int | None = None


@dataclass(frozen=True)
class EndOfStream:
    """A source has ended: every frame it sent is numbered below ``frame_count``.

    Lossless, that is exactly the frames 0 .. frame_count-1; live, the missing numbers
    below it are frames dropped at capture (holes the display skips).
    """

    stream: str
    frame_count: int


@dataclass(frozen=True)
class Control:
    """An order from the supervisor: ``command`` is ``finish``, ``stop`` or ``rewind``,
    ``target`` a stage name or "" for all; ``epoch`` is the epoch a rewind starts."""

    command: str
    target: str = ""
    epoch: int = 0


# A worker reports how many streams it holds; no worker of a bounded site holds more.
MAX_LEASE_LOAD = 1 << 16


@dataclass(frozen=True)
class Ready:
    """A detect worker (``worker``: its name, for logs only) is ready for a capture's frames.

    ``load`` is how many streams it holds now, so a capture leasing a stream prefers an
    idle worker; ``tracking`` says whether it keeps tracks (then every frame of a stream
    must reach it alone) or scans each frame on its own (any such worker will do);
    ``spare`` says it stands by for a stream its site gives to another worker, so it is
    leased the stream only when no worker that is not a spare is ready (live failover).
    """

    worker: str
    load: int = 0
    tracking: bool = True
    spare: bool = False


def lease_header(message) -> dict | None:
    """The header (without schema version) of a lease message; None for any other message."""
    if isinstance(message, Ready):
        return {"kind": "ready", "worker": message.worker, "load": int(message.load),
                "tracking": bool(message.tracking), "spare": bool(message.spare)}
    return None


def _ready(header: dict) -> Ready:
    return Ready(fields.name(header, "worker"), fields.integer(header, "load", 0, MAX_LEASE_LOAD),
                 fields.boolean(header, "tracking"), fields.boolean(header, "spare"))


# The lease messages' decoders by kind.
LEASE_DECODERS: dict[str, Callable[[dict], Ready]] = {"ready": _ready}


# Status messages: stage heartbeats and a supervisor's answer to `fakeblock status`.
# A status report lists every worker of one host; 64 is four times the most a host may run.
MAX_REPORTED_WORKERS = 64
WORKER_STATES = ("starting", "running", "idle", "silent", "restarting", "done", "stopped")
SUPERVISOR_PHASES = ("running", "draining", "stopping")


def worker_name(stage: str, worker: int) -> str:
    """``stage/worker``: how logs, the status board and ``fakeblock status`` name one worker."""
    return f"{stage}/{worker}"


@dataclass(frozen=True)
class StageWorker:
    """Which worker a status message is about: its stage, its number there and its process."""

    stage: str
    worker: int
    pid: int

    @property
    def name(self) -> str:
        """The worker's ``stage/worker`` name."""
        return worker_name(self.stage, self.worker)


@dataclass(frozen=True)
class Status(StageWorker):
    """A stage's heartbeat: who it is, and its counters (numbers only)."""

    counters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusRequest:
    """``fakeblock status`` asking a supervisor's status service for a :class:`StatusReport`."""


@dataclass(frozen=True)
class WorkerReport(StageWorker):
    """One stage worker as its supervisor sees it: liveness, rates and latest counters."""

    alive: bool
    state: str
    restarts: int
    rate_in_fps: float
    rate_out_fps: float
    counters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusReport:
    """A supervisor's answer: its host name, phase, uptime, every worker it runs and its own counters."""

    host: str
    supervisor_pid: int
    phase: str
    uptime_s: float
    workers: tuple[WorkerReport, ...] = ()
    counters: dict[str, float] = field(default_factory=dict)


StatusMessage = Status | StatusRequest | StatusReport


def status_header(message) -> dict | None:
    """The header (without schema version) of a status message; None for any other message."""
    if isinstance(message, Status):
        return {"kind": "status", **_worker_header(message), "counters": dict(message.counters)}
    if isinstance(message, StatusRequest):
        return {"kind": "status_request"}
    if isinstance(message, StatusReport):
        return {"kind": "status_report", "host": message.host, "pid": message.supervisor_pid,
                "phase": message.phase, "uptime_s": float(message.uptime_s),
                "workers": [_report_header(report) for report in message.workers],
                "counters": dict(message.counters)}
    return None


def _worker_header(worker: StageWorker) -> dict:
    return {"stage": worker.stage, "worker": worker.worker, "pid": worker.pid}


def _report_header(report: WorkerReport) -> dict:
    return {**_worker_header(report), "alive": report.alive, "state": report.state, "restarts": report.restarts,
            "rate_in_fps": float(report.rate_in_fps), "rate_out_fps": float(report.rate_out_fps),
            "counters": dict(report.counters)}


def _stage_worker(header: dict) -> tuple[str, int, int]:
    """The checked stage, worker number and pid of a heartbeat or a reported worker."""
    return (fields.name(header, "stage"), fields.integer(header, "worker", 0, MAX_WORKER_NUMBER),
            fields.integer(header, "pid", 0, MAX_PID))


def _status(header: dict) -> Status:
    return Status(*_stage_worker(header), fields.counters(header))


def _status_request(header: dict) -> StatusRequest:
    if set(header) != {"v", "kind"}:
        raise ValueError("a status request carries no fields")
    return StatusRequest()


def _worker_report(entry) -> WorkerReport:
    if not isinstance(entry, dict):
        raise ValueError("each reported worker must be a map")
    rates = [fields.number(entry, key) for key in ("rate_in_fps", "rate_out_fps")]
    if min(rates) < 0:
        raise ValueError("rates cannot be negative")
    return WorkerReport(*_stage_worker(entry), fields.boolean(entry, "alive"),
                        fields.name(entry, "state", WORKER_STATES), fields.integer(entry, "restarts", 0, MAX_RESTARTS),
                        rates[0], rates[1], fields.counters(entry))


def _status_report(header: dict) -> StatusReport:
    workers = header.get("workers")
    if not isinstance(workers, list) or len(workers) > MAX_REPORTED_WORKERS:
        raise ValueError(f"workers must be a list of at most {MAX_REPORTED_WORKERS}")
    uptime_s = fields.number(header, "uptime_s")
    if uptime_s < 0:
        raise ValueError("uptime cannot be negative")
    # A supervisor from before its counters were reported sends none: that is no counters, not an error.
    counters = fields.counters(header) if "counters" in header else {}
    return StatusReport(fields.name(header, "host"), fields.integer(header, "pid", 0, MAX_PID),
                        fields.name(header, "phase", SUPERVISOR_PHASES), uptime_s,
                        tuple(_worker_report(entry) for entry in workers), counters)


# The status messages' decoders by kind; the wire's decoder looks every kind up here too.
STATUS_DECODERS: dict[str, Callable[[dict], StatusMessage]] = {
    "status": _status, "status_request": _status_request, "status_report": _status_report}


Message = Frame | Faces | Result | StreamStart | EndOfStream | Control | Status | StatusRequest | StatusReport | Ready
# "finish": sources end their streams, links stay open (in-flight work drains); "stop": every
# stage exits; "rewind": a lossless source starts again from its first frame in a new epoch.
FINISH, STOP, REWIND = "finish", "stop", "rewind"
CONTROL_COMMANDS = (FINISH, STOP, REWIND)


def _info_header(info: FrameInfo) -> dict:
    header = {"stream": info.stream, "frame": info.frame_number, "position_s": info.position_s,
              "captured_s": info.captured_s}
    return {**header, "epoch": info.epoch} if info.epoch else header


def encode(message: Message) -> list:
    """Turn a message into ZeroMQ frames: ``[header]`` or ``[header, pixel bytes]``."""
    if isinstance(message, Frame):
        pixels = np.ascontiguousarray(message.pixels)
        header = {"kind": "frame", **_info_header(message.info), "live": bool(message.live), "dtype": str(pixels.dtype),
                  "shape": list(pixels.shape)}
        return [_pack(header), _raw(pixels)]
    if isinstance(message, Faces):
        crops = np.ascontiguousarray(message.crops)
        header = {"kind": "faces", **_info_header(message.info), "boxes": [list(b) for b in message.boxes],
                  "tracks": [int(track) for track in message.tracks], "dtype": str(crops.dtype),
                  "shape": list(crops.shape)}
        return [_pack(header), _raw(crops)]
    return [_pack(_header_only(message))]


def _header_only(message: Message) -> dict:
    """The header of a message that carries no pixels."""
    if isinstance(message, Result):
        return {"kind": "result", **_info_header(message.info), "boxes": [list(b) for b in message.boxes],
                "tracks": [int(track) for track in message.tracks],
                "scores": [[float(s) for s in row] for row in message.scores]}
    if isinstance(message, StreamStart):
        return {"kind": "start", "stream": message.stream, "frames_total": message.frames_total}
    if isinstance(message, EndOfStream):
        return {"kind": "end", "stream": message.stream, "frame_count": message.frame_count}
    if isinstance(message, Control):
        order = {"kind": "control", "command": message.command, "target": message.target}
        return {**order, "epoch": message.epoch} if message.epoch else order
    header = status_header(message) or lease_header(message)
    if header is None:
        raise TypeError(f"cannot encode {type(message).__name__}")
    return header


def _raw(array: np.ndarray) -> memoryview:
    """The array's bytes as a flat buffer, without a copy (zero-size arrays included)."""
    if str(array.dtype) not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {array.dtype} cannot be sent; allowed: {ALLOWED_DTYPES}")
    # ndarray.data is memoryview(array); numpy's stubs only call an ndarray a Buffer on Python 3.12+.
    return array.reshape(-1).data


def _pack(header: dict) -> bytes:
    return msgpack.packb({"v": SCHEMA_VERSION, **header}, use_bin_type=True)


def decode(frames: list) -> Message:
    """Parse ZeroMQ frames (bytes, memoryviews or ``zmq.Frame``) into a message, or raise ``ValueError``.

    Total: whatever a peer sends (any types inside a valid header, any number of parts),
    the only exception that leaves is ``ValueError``, so one message can never crash the
    stage that reads it.  The field checks raise ``ValueError`` themselves; anything else
    a hostile header still provokes is a gap in them, turned into ``ValueError`` here.
    """
    try:
        return _decode(frames)
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001 - the trust boundary: nothing else may escape
        raise ValueError(f"malformed message ({type(error).__name__}: {error})") from None


def _decode(frames: list) -> Message:
    if not isinstance(frames, (list, tuple)) or not frames or len(frames) > 2:
        raise ValueError(f"expected 1 or 2 frames, got {len(frames)}")
    header = fields.unpack_header(_as_buffer(frames[0]), SCHEMA_VERSION)
    kind = header.get("kind")
    if not isinstance(kind, str):
        raise ValueError(f"message kind must be a string, got {type(kind).__name__}")
    payload = _as_buffer(frames[1]) if len(frames) == 2 else None
    if kind in PIXEL_DECODERS:
        if payload is None:
            raise ValueError(f"a {kind} message needs a pixel frame")
        return PIXEL_DECODERS[kind](header, payload)
    if payload is not None:
        raise ValueError(f"a {kind!r} message carries no pixel frame")
    decoder = HEADER_DECODERS.get(kind)
    if decoder is None:
        raise ValueError(f"unknown message kind {kind!r}")
    return decoder(header)


def _as_buffer(frame) -> memoryview:
    buffer = getattr(frame, "buffer", frame)  # zmq.Frame exposes .buffer
    if not isinstance(buffer, (bytes, bytearray, memoryview)):
        raise ValueError(f"frame of type {type(frame).__name__} is not bytes")
    return memoryview(buffer)


def _info(header: dict) -> FrameInfo:
    epoch = fields.integer(header, "epoch", 0, MAX_EPOCH) if "epoch" in header else 0
    return FrameInfo(fields.name(header, "stream"), fields.integer(header, "frame", 0, MAX_FRAME_NUMBER),
                     fields.number(header, "position_s"), fields.number(header, "captured_s"), epoch)


def _frame(header: dict, payload: memoryview) -> Frame:
    return Frame(_info(header), fields.pixels(header, payload, fields.frame_shape_ok), fields.boolean(header, "live"))


def _faces(header: dict, payload: memoryview) -> Faces:
    crops = fields.pixels(header, payload, fields.crops_shape_ok)
    boxes = fields.boxes(header)
    if len(boxes) != crops.shape[0]:
        raise ValueError(f"{len(boxes)} boxes but {crops.shape[0]} crops")
    return Faces(_info(header), boxes, crops, fields.tracks(header, len(boxes)))


def _result(header: dict) -> Result:
    boxes, scores = fields.boxes(header), fields.scores(header)
    if len(scores) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} score rows")
    return Result(_info(header), boxes, scores, fields.tracks(header, len(boxes)))


def _start(header: dict) -> StreamStart:
    total = header.get("frames_total")
    return StreamStart(fields.name(header, "stream"),
                       None if total is None else fields.integer(header, "frames_total", 0, MAX_FRAME_NUMBER))


def _end(header: dict) -> EndOfStream:
    return EndOfStream(fields.name(header, "stream"), fields.integer(header, "frame_count", 0, MAX_FRAME_NUMBER))


def _control(header: dict) -> Control:
    command, target = header.get("command"), header.get("target", "")
    if command not in CONTROL_COMMANDS:
        raise ValueError(f"unknown control command {command!r}")
    if not isinstance(target, str) or len(target) > MAX_STREAM_NAME_CHARS:
        raise ValueError("control target must be a stage name")
    epoch = fields.integer(header, "epoch", 0, MAX_EPOCH) if "epoch" in header else 0
    return Control(command, target, epoch)


PIXEL_DECODERS: dict[str, Callable[[dict, memoryview], Message]] = {"frame": _frame, "faces": _faces}
HEADER_DECODERS: dict[str, Callable[[dict], Message]] = {
    "result": _result, "start": _start, "end": _end, "control": _control, **STATUS_DECODERS, **LEASE_DECODERS}

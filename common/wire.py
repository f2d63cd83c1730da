"""Every message fakeblock sends, and the one codec for all of them.

A message is a msgpack header (schema version, kind, stream, frame number, times, and for
pixel messages dtype and shape) followed, for messages that carry pixels, by the raw
pixel bytes as a frame of their own so they travel without copies.

Decoding is a trust boundary: :func:`decode` checks version, kind, field types, dtype
against an allow-list, that every dimension is positive and bounded and that the byte
count matches the shape exactly before it touches ``np.frombuffer``; anything else raises
``ValueError``.  Never pickle, never msgpack-numpy.  Decoded pixel arrays are read-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import msgpack
import numpy as np

SCHEMA_VERSION = 1
MAX_DIMENSION_PX = 4096
MAX_FACES_PER_FRAME = 64
MAX_STREAM_NAME_CHARS = 128
MAX_HEADER_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # socket maxmsgsize; a 4096x4096x3 frame fits
ALLOWED_DTYPES = ("uint8",)
EMOTION_COUNT = 7
FACE_SIZE_PX = 48


@dataclass(frozen=True)
class FrameInfo:
    """Identity and timing of one source frame, carried by every per-frame message.

    ``position_s`` is the frame's place in a file (seconds since start for live sources);
    ``captured_s`` is ``time.monotonic()`` at capture, for latency on one host.
    """

    stream: str
    frame_number: int
    position_s: float
    captured_s: float


@dataclass(frozen=True)
class Frame:
    """A captured image (H x W x 3 BGR or H x W grey, uint8)."""

    info: FrameInfo
    pixels: np.ndarray


@dataclass(frozen=True)
class Faces:
    """Faces found in one frame: boxes in source pixels and 48x48 grey crops (N may be 0)."""

    info: FrameInfo
    boxes: tuple[tuple[int, int, int, int], ...]
    crops: np.ndarray


@dataclass(frozen=True)
class Result:
    """Emotion scores (seven per face, in ``EMOTIONS`` order) for every face in one frame."""

    info: FrameInfo
    boxes: tuple[tuple[int, int, int, int], ...]
    scores: tuple[tuple[float, ...], ...]


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
    """An order from the supervisor; ``command`` is ``finish`` or ``stop``, ``target`` a stage name or "" for all."""

    command: str
    target: str = ""


@dataclass(frozen=True)
class Status:
    """A stage's heartbeat: who it is, and its counters (numbers only)."""

    stage: str
    worker: int
    pid: int
    counters: dict[str, float] = field(default_factory=dict)


Message = Frame | Faces | Result | EndOfStream | Control | Status
# "finish": sources end their streams but every link stays open (so what is in flight
# drains); "stop": every stage winds down and exits.
CONTROL_COMMANDS = ("finish", "stop")


def _info_header(info: FrameInfo) -> dict:
    return {"stream": info.stream, "frame": info.frame_number, "position_s": info.position_s,
            "captured_s": info.captured_s}


def encode(message: Message) -> list:
    """Turn a message into ZeroMQ frames: ``[header]`` or ``[header, pixel bytes]``."""
    if isinstance(message, Frame):
        pixels = np.ascontiguousarray(message.pixels)
        header = {"kind": "frame", **_info_header(message.info), "dtype": str(pixels.dtype), "shape": list(pixels.shape)}
        return [_pack(header), _raw(pixels)]
    if isinstance(message, Faces):
        crops = np.ascontiguousarray(message.crops)
        header = {"kind": "faces", **_info_header(message.info), "boxes": [list(b) for b in message.boxes],
                  "dtype": str(crops.dtype), "shape": list(crops.shape)}
        return [_pack(header), _raw(crops)]
    if isinstance(message, Result):
        header = {"kind": "result", **_info_header(message.info), "boxes": [list(b) for b in message.boxes],
                  "scores": [[float(s) for s in row] for row in message.scores]}
        return [_pack(header)]
    if isinstance(message, EndOfStream):
        return [_pack({"kind": "end", "stream": message.stream, "frame_count": message.frame_count})]
    if isinstance(message, Control):
        return [_pack({"kind": "control", "command": message.command, "target": message.target})]
    if isinstance(message, Status):
        return [_pack({"kind": "status", "stage": message.stage, "worker": message.worker, "pid": message.pid,
                       "counters": dict(message.counters)})]
    raise TypeError(f"cannot encode {type(message).__name__}")


def _raw(array: np.ndarray) -> memoryview:
    """The array's bytes as a flat buffer, without a copy (zero-size arrays included)."""
    if str(array.dtype) not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {array.dtype} cannot be sent; allowed: {ALLOWED_DTYPES}")
    return memoryview(array.reshape(-1))


def _pack(header: dict) -> bytes:
    return msgpack.packb({"v": SCHEMA_VERSION, **header}, use_bin_type=True)


def decode(frames: list) -> Message:
    """Parse ZeroMQ frames (bytes, memoryviews or ``zmq.Frame``) into a message, or raise ``ValueError``."""
    if not frames or len(frames) > 2:
        raise ValueError(f"expected 1 or 2 frames, got {len(frames)}")
    header = _unpack_header(_as_buffer(frames[0]))
    kind = header.get("kind")
    payload = _as_buffer(frames[1]) if len(frames) == 2 else None
    if kind in ("frame", "faces"):
        if payload is None:
            raise ValueError(f"a {kind} message needs a pixel frame")
    elif payload is not None:
        raise ValueError(f"a {kind!r} message carries no pixel frame")
    if kind == "frame":
        pixels = _pixels(header, payload, _frame_shape_ok)
        return Frame(_info(header), pixels)
    if kind == "faces":
        crops = _pixels(header, payload, _crops_shape_ok)
        boxes = _boxes(header)
        if len(boxes) != crops.shape[0]:
            raise ValueError(f"{len(boxes)} boxes but {crops.shape[0]} crops")
        return Faces(_info(header), boxes, crops)
    if kind == "result":
        boxes = _boxes(header)
        scores = _scores(header)
        if len(scores) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} score rows")
        return Result(_info(header), boxes, scores)
    if kind == "end":
        return EndOfStream(_stream(header), _integer(header, "frame_count", 0, 2**53))
    if kind == "control":
        command = header.get("command")
        target = header.get("target", "")
        if command not in CONTROL_COMMANDS:
            raise ValueError(f"unknown control command {command!r}")
        if not isinstance(target, str) or len(target) > MAX_STREAM_NAME_CHARS:
            raise ValueError("control target must be a stage name")
        return Control(command, target)
    if kind == "status":
        return _status(header)
    raise ValueError(f"unknown message kind {kind!r}")


def _as_buffer(frame) -> memoryview:
    buffer = getattr(frame, "buffer", frame)  # zmq.Frame exposes .buffer
    if not isinstance(buffer, (bytes, bytearray, memoryview)):
        raise ValueError(f"frame of type {type(frame).__name__} is not bytes")
    return memoryview(buffer)


def _unpack_header(buffer: memoryview) -> dict:
    if len(buffer) > MAX_HEADER_BYTES:
        raise ValueError(f"header of {len(buffer)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = msgpack.unpackb(buffer, raw=False, strict_map_key=True)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError) as error:
        raise ValueError(f"header is not valid msgpack: {error}") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a map")
    if header.get("v") != SCHEMA_VERSION:
        raise ValueError(f"schema version {header.get('v')!r} is not {SCHEMA_VERSION}")
    return header


def _integer(header: dict, key: str, low: int, high: int) -> int:
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{key} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _number(header: dict, key: str) -> float:
    value = header.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def _stream(header: dict) -> str:
    stream = header.get("stream")
    if not isinstance(stream, str) or not 0 < len(stream) <= MAX_STREAM_NAME_CHARS:
        raise ValueError(f"stream must be a name of 1-{MAX_STREAM_NAME_CHARS} characters")
    return stream


def _info(header: dict) -> FrameInfo:
    return FrameInfo(_stream(header), _integer(header, "frame", 0, 2**53), _number(header, "position_s"),
                     _number(header, "captured_s"))


def _shape(header: dict) -> tuple[int, ...]:
    shape = header.get("shape")
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3:
        raise ValueError(f"shape must be a list of 1-3 dimensions, got {shape!r}")
    for size in shape:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > MAX_DIMENSION_PX:
            raise ValueError(f"every dimension must lie in [0, {MAX_DIMENSION_PX}], got {shape!r}")
    return tuple(shape)


def _frame_shape_ok(shape: tuple[int, ...]) -> bool:
    return len(shape) in (2, 3) and shape[0] > 0 and shape[1] > 0 and (len(shape) == 2 or shape[2] in (1, 3))


def _crops_shape_ok(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[0] <= MAX_FACES_PER_FRAME and shape[1:] == (FACE_SIZE_PX, FACE_SIZE_PX)


def _pixels(header: dict, payload: memoryview, shape_ok) -> np.ndarray:
    dtype = header.get("dtype")
    if dtype not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {ALLOWED_DTYPES}")
    shape = _shape(header)
    if not shape_ok(shape):
        raise ValueError(f"shape {shape} is not allowed for a {header['kind']} message")
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if payload.nbytes != expected:
        raise ValueError(f"pixel frame has {payload.nbytes} bytes, shape {shape} needs {expected}")
    pixels = np.frombuffer(payload, dtype=dtype).reshape(shape)
    pixels.flags.writeable = False  # the buffer belongs to ZeroMQ: copy before drawing
    return pixels


def _boxes(header: dict) -> tuple[tuple[int, int, int, int], ...]:
    boxes = header.get("boxes")
    if not isinstance(boxes, list) or len(boxes) > MAX_FACES_PER_FRAME:
        raise ValueError(f"boxes must be a list of at most {MAX_FACES_PER_FRAME}")
    checked = []
    for box in boxes:
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) <= 4 * MAX_DIMENSION_PX
                           for v in box) or box[2] <= 0 or box[3] <= 0):
            raise ValueError(f"a box must be [x, y, width, height] with positive size, got {box!r}")
        checked.append(tuple(box))
    return tuple(checked)


def _scores(header: dict) -> tuple[tuple[float, ...], ...]:
    rows = header.get("scores")
    if not isinstance(rows, list) or len(rows) > MAX_FACES_PER_FRAME:
        raise ValueError("scores must be a list of rows")
    checked = []
    for row in rows:
        if (not isinstance(row, list) or len(row) != EMOTION_COUNT
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row)):
            raise ValueError(f"each score row must hold {EMOTION_COUNT} finite numbers")
        checked.append(tuple(float(v) for v in row))
    return tuple(checked)


def _status(header: dict) -> Status:
    stage = header.get("stage")
    counters = header.get("counters")
    if not isinstance(stage, str) or not 0 < len(stage) <= MAX_STREAM_NAME_CHARS:
        raise ValueError("status needs a stage name")
    if not isinstance(counters, dict) or len(counters) > 64 or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in counters.items()):
        raise ValueError("status counters must map names to numbers")
    return Status(stage, _integer(header, "worker", 0, 1 << 16), _integer(header, "pid", 0, 1 << 31), counters)

"""Checked field readers for :mod:`fakeblock.common.wire`'s decoder.

Every function takes a decoded msgpack header (a dict from an untrusted peer) and returns
a value of the promised type and range, or raises ``ValueError`` naming the field.  The
messages themselves, and the one codec, live in :mod:`fakeblock.common.wire`.
"""

from __future__ import annotations

import math

import msgpack
import numpy as np

from fakeblock.common.model_io import EMOTION_COUNT, FACE_SIZE_PX

MAX_DIMENSION_PX = 4096
MAX_FACES_PER_FRAME = 64
MAX_NAME_CHARS = 128
MAX_HEADER_BYTES = 64 * 1024
MAX_COUNTERS = 64
ALLOWED_DTYPES = ("uint8",)
# Frame numbers and track ids go no higher than the largest integer a float (so every
# JSON reader of the results file) holds exactly.
MAX_FRAME_NUMBER = MAX_TRACK_ID = 2**53
MAX_WORKER_NUMBER = 1 << 16
# Process ids and restart counts are at most 2**31, the bound of a signed 32-bit integer.
MAX_PID = MAX_RESTARTS = 1 << 31


def unpack_header(buffer: memoryview, schema_version: int) -> dict:
    """The msgpack map in ``buffer``, after checking its size and schema version."""
    if len(buffer) > MAX_HEADER_BYTES:
        raise ValueError(f"header of {len(buffer)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = msgpack.unpackb(buffer, raw=False, strict_map_key=True)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError) as error:
        raise ValueError(f"header is not valid msgpack: {error}") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a map")
    if header.get("v") != schema_version:
        raise ValueError(f"schema version {header.get('v')!r} is not {schema_version}")
    return header


def integer(header: dict, key: str, low: int, high: int) -> int:
    """An int (not a bool) in ``[low, high]``."""
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{key} must be an integer in [{low}, {high}], got {value!r}")
    return value


def number(header: dict, key: str) -> float:
    """A finite int or float (not a bool), as a float."""
    value = header.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def boolean(header: dict, key: str) -> bool:
    """A msgpack boolean."""
    value = header.get(key)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


def name(header: dict, key: str, choices: tuple[str, ...] | None = None) -> str:
    """A string of 1 to ``MAX_NAME_CHARS`` characters (one of ``choices`` when given)."""
    value = header.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_CHARS:
        raise ValueError(f"{key} must be a name of 1-{MAX_NAME_CHARS} characters")
    if choices is not None and value not in choices:
        raise ValueError(f"{key} {value!r} is not one of {', '.join(choices)}")
    return value


def counters(header: dict, key: str = "counters") -> dict[str, float]:
    """A map of at most ``MAX_COUNTERS`` short names to finite numbers."""
    value = header.get(key)
    if not isinstance(value, dict) or len(value) > MAX_COUNTERS or not all(
            isinstance(k, str) and 0 < len(k) <= MAX_NAME_CHARS and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v) for k, v in value.items()):
        raise ValueError(f"{key} must map at most {MAX_COUNTERS} names to finite numbers")
    return value


def shape(header: dict) -> tuple[int, ...]:
    """A list of 1-3 dimensions, each in ``[0, MAX_DIMENSION_PX]``."""
    value = header.get("shape")
    if not isinstance(value, list) or not 1 <= len(value) <= 3:
        raise ValueError(f"shape must be a list of 1-3 dimensions, got {value!r}")
    for size in value:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > MAX_DIMENSION_PX:
            raise ValueError(f"every dimension must lie in [0, {MAX_DIMENSION_PX}], got {value!r}")
    return tuple(value)


def frame_shape_ok(dimensions: tuple[int, ...]) -> bool:
    """H x W grey or H x W x 1/3 colour, never empty."""
    return (len(dimensions) in (2, 3) and dimensions[0] > 0 and dimensions[1] > 0
            and (len(dimensions) == 2 or dimensions[2] in (1, 3)))


def crops_shape_ok(dimensions: tuple[int, ...]) -> bool:
    """N x 48 x 48 with N at most ``MAX_FACES_PER_FRAME`` (N may be 0)."""
    return (len(dimensions) == 3 and dimensions[0] <= MAX_FACES_PER_FRAME
            and dimensions[1:] == (FACE_SIZE_PX, FACE_SIZE_PX))


def pixels(header: dict, payload: memoryview, shape_ok) -> np.ndarray:
    """A read-only array over ``payload`` once dtype, shape and byte count all check out."""
    dtype = header.get("dtype")
    if dtype not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {ALLOWED_DTYPES}")
    dimensions = shape(header)
    if not shape_ok(dimensions):
        raise ValueError(f"shape {dimensions} is not allowed for a {header['kind']} message")
    expected = math.prod(dimensions) * np.dtype(dtype).itemsize
    if payload.nbytes != expected:
        raise ValueError(f"pixel frame has {payload.nbytes} bytes, shape {dimensions} needs {expected}")
    array = np.frombuffer(payload, dtype=dtype).reshape(dimensions)
    array.flags.writeable = False  # the buffer belongs to ZeroMQ: copy before drawing
    return array


def boxes(header: dict) -> tuple[tuple[int, int, int, int], ...]:
    """At most ``MAX_FACES_PER_FRAME`` ``[x, y, width, height]`` boxes with positive size."""
    value = header.get("boxes")
    if not isinstance(value, list) or len(value) > MAX_FACES_PER_FRAME:
        raise ValueError(f"boxes must be a list of at most {MAX_FACES_PER_FRAME}")
    checked = []
    for box in value:
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) <= 4 * MAX_DIMENSION_PX
                           for v in box) or box[2] <= 0 or box[3] <= 0):
            raise ValueError(f"a box must be [x, y, width, height] with positive size, got {box!r}")
        checked.append(tuple(box))
    return tuple(checked)


def tracks(header: dict, face_count: int) -> tuple[int, ...]:
    """Track ids: none, or one positive integer per face."""
    value = header.get("tracks")
    if (not isinstance(value, list) or len(value) not in (0, face_count)
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_TRACK_ID for v in value)):
        raise ValueError(f"tracks must be empty or one id in [1, {MAX_TRACK_ID}] per face")
    return tuple(value)


def scores(header: dict) -> tuple[tuple[float, ...], ...]:
    """Rows of ``EMOTION_COUNT`` finite numbers, one row per face."""
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

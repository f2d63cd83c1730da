"""Reading a results file for ``fakeblock report``: one checked record per line, streamed.

The file is read line by line, so an hours-long replay (100k+ lines) never sits in memory.
Every problem is a :class:`UserError` naming the file and the line (``r.jsonl:12: ...``);
the one exception is a last line cut short without its newline, the trace of a replay that
is still writing, which is skipped with a warning.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from fakeblock.common.errors import UserError
from fakeblock.common.model_io import EMOTIONS

LOGGER = logging.getLogger(__name__)
# A line of a thousand faces is about 400 kB; anything longer is not a results file.
MAX_LINE_BYTES = 4 * 1024 * 1024
EMOTION_INDEX = {name: index for index, name in enumerate(EMOTIONS)}


class FaceRecord(NamedTuple):
    """One face of one frame: its track (None without tracking), top emotion (index into EMOTIONS), scores."""

    track: int | None
    emotion: int
    scores: tuple[float, ...]


class FrameRecord(NamedTuple):
    """One line of a results file: which stream, which frame, when, and its faces."""

    stream: str
    frame: int
    time_s: float
    faces: tuple[FaceRecord, ...]


class LineError(ValueError):
    """What is wrong with one line; :func:`read_records` adds the file and line number."""


class NotJsonError(LineError):
    """A line that is not JSON text at all (as a last line still being written is)."""


def _whole_number(value: object, name: str, where: str = "") -> int:
    """``value`` as a whole number of at least 0, else a LineError naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LineError(f"{where}'{name}' must be a whole number of at least 0, not {value!r:.40}")
    return value


def _number(value: object, name: str, where: str = "") -> float:
    """``value`` as a finite number, else a LineError naming the field."""
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # a whole number too large for a float
        number = math.nan
    if not math.isfinite(number):
        raise LineError(f"{where}'{name}' must be a number, not {value!r:.40}")
    return number


def _field(record: dict, name: str, where: str = "") -> object:
    """``record[name]``, else a LineError saying which field is missing."""
    if name not in record:
        raise LineError(f"{where}missing '{name}'")
    return record[name]


def parse_face(face: object, position: int) -> FaceRecord:
    """One entry of a line's ``faces`` list, checked; ``position`` (from 1) names it in errors."""
    where = f"face {position}: "
    if not isinstance(face, dict):
        raise LineError(f"{where}expected a JSON object, not {type(face).__name__}")
    track = face.get("track")
    if track is not None:
        track = _whole_number(track, "track", where)
    emotion = _field(face, "emotion", where)
    if not isinstance(emotion, str) or emotion not in EMOTION_INDEX:
        raise LineError(f"{where}'emotion' must be one of {', '.join(EMOTIONS)}, not {emotion!r:.40}")
    scores = _field(face, "scores", where)
    if not isinstance(scores, dict) or set(scores) != set(EMOTIONS):
        raise LineError(f"{where}'scores' must give a score for each of {', '.join(EMOTIONS)}")
    values = tuple(_number(scores[name], f"scores.{name}", where) for name in EMOTIONS)
    if not all(0.0 <= value <= 1.0 for value in values):
        raise LineError(f"{where}'scores' must lie between 0 and 1")
    return FaceRecord(track, EMOTION_INDEX[emotion], values)


def parse_record(text: str) -> FrameRecord:
    """One results line (JSON text), checked; a LineError says what is wrong with it."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotJsonError(f"not JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise LineError("JSON nested too deeply: not a results line") from None
    if not isinstance(record, dict):
        raise LineError(f"expected a JSON object, not {type(record).__name__}")
    stream = _field(record, "stream")
    if not isinstance(stream, str) or not stream:
        raise LineError(f"'stream' must be a non-empty string, not {stream!r:.40}")
    frame = _whole_number(_field(record, "frame"), "frame")
    time_s = _number(_field(record, "time_s"), "time_s")
    faces = _field(record, "faces")
    if not isinstance(faces, list):
        raise LineError(f"'faces' must be a list, not {type(faces).__name__}")
    return FrameRecord(stream, frame, time_s, tuple(parse_face(face, index) for index, face in enumerate(faces, 1)))


def _open(path: Path):
    """The results file opened for reading in binary, or a UserError saying why it cannot be."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a results file")
    try:
        return path.open("rb")
    except OSError as error:
        raise UserError(f"{path}: cannot read it ({error.strerror})") from None


def _is_cut_short(raw: bytes, error: LineError) -> bool:
    """True for a last line a writer has not finished: no newline, and not JSON (yet)."""
    return not raw.endswith(b"\n") and len(raw) <= MAX_LINE_BYTES and isinstance(error, NotJsonError)


def _decode(raw: bytes) -> str:
    """One line's bytes as text, or a LineError when too long or not UTF-8."""
    if len(raw) > MAX_LINE_BYTES:
        raise LineError(f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB: not a results file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotJsonError("not UTF-8 text: not a results file") from None


def read_records(path: Path) -> Iterator[FrameRecord]:
    """Every line of the results file at ``path`` as a FrameRecord, one at a time.

    Blank lines are passed over.  Raises UserError (``<file>:<line>: ...``) for a line
    that is not a result, and for a file with no result in it.
    """
    found = 0
    with _open(path) as file:
        for number, raw in enumerate(iter(lambda: file.readline(MAX_LINE_BYTES + 1), b""), 1):
            try:
                text = _decode(raw)
                if not text.strip():
                    continue
                record = parse_record(text)
            except LineError as error:
                if _is_cut_short(raw, error):
                    LOGGER.warning("%s:%d: skipping the last line: it is cut short (is a replay still writing "
                                   "the file?)", path, number)
                    break
                raise UserError(f"{path}:{number}: {error}") from None
            found += 1
            yield record
    if not found:
        what = "the file is empty" if path.stat().st_size == 0 else "no complete result line in it"
        raise UserError(f"{path}: {what}")

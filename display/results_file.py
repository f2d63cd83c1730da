"""The results file: one JSON line per released frame, never truncated by a restarted display.

A display restarted after a crash (``DisplayConfig.resume``) opens the file to append. It
first reads what is there: whole lines stay, a line cut short by the crash is removed,
and the last frame written of each stream tells the orderer where to go on, so no frame
is written twice.

The path ``-`` means standard output (``STDOUT_PATH``): the lines go to the display's
stdout, which is the terminal's or the pipe's, and every log stays on stderr.  A
restarted display has nothing to read back there and just goes on writing.  A reader
that closes the pipe (``| head``) ends the run: one clear error, no traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from fakeblock.common import wire
from fakeblock.common.errors import UserError
from fakeblock.display.core import result_record

LOGGER = logging.getLogger(__name__)
RESULTS_FLUSH_INTERVAL_S = 0.5
STDOUT_PATH = "-"


class ResultsWriter:
    """One JSON line per released result, flushed at least every ``RESULTS_FLUSH_INTERVAL_S``."""

    def __init__(self, path: str, resume: bool = False):
        self.path = path
        # Stream -> the frame number after the last one already in the file (resume only).
        self.written_frames: dict[str, int] = {}
        self.to_stdout = path == STDOUT_PATH
        self.lines = 0
        self._flushed_s, self._unflushed, self._closed = time.monotonic(), False, False
        self._file = sys.stdout if self.to_stdout else self._open_file(path, resume)

    def _open_file(self, path: str, resume: bool):
        """Open ``path`` to write, or after a restart (``resume``) to append after its whole lines."""
        file_path = Path(path).expanduser()
        try:
            if resume and file_path.exists():
                self.written_frames, kept = read_written_frames(file_path)
                LOGGER.warning("the display restarted: continuing %s after its %d whole lines", path, kept)
            return open(file_path, "a" if resume else "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as error:
            raise UserError(f"cannot write results to {path}: {error.strerror or error}") from None

    def write(self, result: wire.Result, raw: wire.Result | None = None) -> None:
        """Append the result's record; flushes when the last flush is old enough to matter."""
        try:
            self._file.write(json.dumps(result_record(result, raw)) + "\n")
        except BrokenPipeError:
            self._reader_gone()
        self.lines += 1
        self._unflushed = True
        self.flush_if_due()

    def flush_if_due(self) -> None:
        """Flush when lines wait and the last flush is ``RESULTS_FLUSH_INTERVAL_S`` old."""
        if self._unflushed and time.monotonic() - self._flushed_s >= RESULTS_FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Push buffered lines to the file (tail -f and a crash both see them)."""
        try:
            self._file.flush()
        except BrokenPipeError:
            self._reader_gone()
        self._flushed_s, self._unflushed = time.monotonic(), False

    def close(self) -> None:
        """Flush and close (standard output is only flushed); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.to_stdout:
            try:
                self._file.flush()
            except BrokenPipeError:
                self._point_stdout_at_nothing()
        else:
            self._file.close()
        LOGGER.info("wrote %d result lines to %s", self.lines, "stdout" if self.to_stdout else self.path)


    def _reader_gone(self) -> None:
        """The pipe on stdout was closed: nothing more can be delivered, so the display stops."""
        self._point_stdout_at_nothing()
        self._closed = True
        raise UserError(f"the reader of the results on stdout went away ({self.lines} lines written); stopping")

    @staticmethod
    def _point_stdout_at_nothing() -> None:
        """Send what stdout still buffers to /dev/null, so Python's own flush at exit cannot fail again."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def read_written_frames(path: Path) -> tuple[dict[str, int], int]:
    """Per stream, the frame after the last one in ``path``, and how many whole lines it has.

    A last line without its newline (the writer died mid-line) is cut off the file, so the
    appended lines start on a line of their own.
    """
    data = path.read_bytes()
    whole = data[:data.rfind(b"\n") + 1]
    if len(whole) < len(data):
        with open(path, "r+b") as file:
            file.truncate(len(whole))
    written: dict[str, int] = {}
    lines = whole.splitlines()
    for line in lines:
        try:
            record = json.loads(line)
            stream, frame = record["stream"], int(record["frame"])
        except (ValueError, KeyError, TypeError):
            continue  # not a line this writer wrote: left as it is
        written[stream] = max(written.get(stream, 0), frame + 1)
    return written, len(lines)

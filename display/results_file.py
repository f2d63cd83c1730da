"""The results file: one JSON line per released frame, whole lines only, whatever the disk does.

Opening.  A fresh display writes the file anew (and says so when it held lines).  A
display restarted after a crash (``DisplayConfig.resume``) appends.  From a regular file
it first reads what is there: whole lines stay, a line cut short by the crash is
removed, and the last frame written of each stream tells the orderer where to go on, so
no frame is written twice.  A pipe, FIFO or device (``--results /dev/stdout | cat``,
``/dev/full``) cannot be read back: a restarted display goes on writing without reading
and says that the lines already written there cannot be checked.

Writing.  Lines wait in memory and go to the operating system at least every
``RESULTS_FLUSH_INTERVAL_S``, by ``os.write``, so the writer knows which bytes landed.  A
write that fails (no space left, a quota, an I/O error) cuts a regular file back to its
last whole line and raises :class:`~fakeblock.common.errors.OutputFailed` in one line
(``no space left on device writing results.jsonl: 132 lines kept``): the run stops with
exit code 1 rather than restarting a display that would only fail again.

Identity.  The writer remembers the regular file's device and inode and checks, at every
flush and at the close, that the path still names it: a file deleted or replaced during
the run is an :class:`OutputFailed` too, never a run that says "done" with nothing on disk.

The path ``-`` means standard output (``STDOUT_PATH``): the lines go to the display's
stdout, which is the terminal's or the pipe's, and every log stays on stderr.  A reader
that closes the pipe (``| head``) ends the run: one clear error, no traceback.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import sys
import time
from pathlib import Path

from fakeblock.common import wire
from fakeblock.common.errors import OutputFailed, UserError
from fakeblock.common.wording import plural
from fakeblock.display.core import result_record

LOGGER = logging.getLogger(__name__)
# How long a restarted display waits for a reader of a FIFO whose reader ended, and how often it looks.
FIFO_READER_WAIT_S = 5.0
FIFO_POLL_S = 0.1
RESULTS_FLUSH_INTERVAL_S = 0.5
# Lines held in memory at most before they go to the operating system, whatever the interval.
MAX_BUFFERED_BYTES = 1 << 20
STDOUT_PATH = "-"
FILE_MODE = 0o666  # before the umask, as open() would


class ResultsWriter:
    """One JSON line per released result, handed to the operating system at least every ``RESULTS_FLUSH_INTERVAL_S``."""

    def __init__(self, path: str, resume: bool = False):
        self.path = path
        # Stream -> the frame number after the last one already in the file (resume only).
        self.written_frames: dict[str, int] = {}
        self.to_stdout = path == STDOUT_PATH
        self.lines = 0  # lines given to this writer
        self.kept_lines = 0  # whole lines in the file: those found at a resume and those written since
        self._buffer = bytearray()
        # A regular file's size as written, and up to the end of its last whole line.
        self._landed_bytes = self._whole_bytes = 0
        self._identity: tuple[int, int] | None = None  # a regular file's (device, inode)
        self._flushed_s, self._closed = time.monotonic(), False
        if self.to_stdout:
            sys.stdout.flush()
            self._fd = sys.stdout.fileno()
        else:
            self._fd = self._open_file(path, resume)

    def _open_file(self, path: str, resume: bool) -> int:
        """Open ``path`` to write, or after a restart (``resume``) to append after its whole lines."""
        file_path = Path(path).expanduser()
        try:
            mode = os.stat(file_path).st_mode if file_path.exists() else None
            regular = mode is None or stat.S_ISREG(mode)
            if resume and mode is not None and regular:
                self.written_frames, self.kept_lines = read_written_frames(file_path)
                LOGGER.warning("the display restarted: continuing %s after its %d whole lines", path,
                               self.kept_lines)
            elif resume and not regular:
                LOGGER.warning("the display restarted: %s is not a regular file (a pipe or a device), so the "
                               "lines already written there cannot be checked; new lines follow them", path)
            elif mode is not None and regular and os.path.getsize(file_path) > 0:
                LOGGER.warning("overwriting %s, which held %d bytes", path, os.path.getsize(file_path))
            if resume and mode is not None and stat.S_ISFIFO(mode):
                return reopen_fifo(file_path, path)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if resume or not regular else os.O_TRUNC)
            fd = os.open(file_path, flags, FILE_MODE)
        except OSError as error:
            raise UserError(f"cannot write results to {path}: {error.strerror or error}") from None
        status = os.fstat(fd)
        if stat.S_ISREG(status.st_mode):
            self._identity = (status.st_dev, status.st_ino)
            self._landed_bytes = self._whole_bytes = status.st_size  # a resumed file ends on a whole line
        return fd

    def write(self, result: wire.Result, raw: wire.Result | None = None) -> None:
        """Add the result's record; flushes when the last flush is old enough to matter."""
        self._buffer += (json.dumps(result_record(result, raw)) + "\n").encode()
        self.lines += 1
        if len(self._buffer) >= MAX_BUFFERED_BYTES:
            self.flush()
        else:
            self.flush_if_due()

    def flush_if_due(self) -> None:
        """Flush (and check the file is still there) once the last flush is ``RESULTS_FLUSH_INTERVAL_S`` old."""
        if not self._closed and time.monotonic() - self._flushed_s >= RESULTS_FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        """Hand the waiting lines to the operating system (tail -f and a crash both see them).

        Raises :class:`OutputFailed` when that fails or the file is no longer at its path.
        """
        self._flushed_s = time.monotonic()
        data, self._buffer = memoryview(bytes(self._buffer)), bytearray()
        try:
            while data:
                landed = os.write(self._fd, data)
                self._count_landed(data[:landed])
                data = data[landed:]
        except BrokenPipeError:
            if self.to_stdout:
                self._reader_gone()
            self._failed(f"the reader of {self.path} went away")
        except OSError as error:
            self._failed(f"{_reason(error)} writing {self.path}")
        self._check_identity()

    def _count_landed(self, landed: memoryview) -> None:
        """Note the bytes and the whole lines among them that reached the file."""
        data = landed.tobytes()
        self.kept_lines += data.count(b"\n")
        last_newline = data.rfind(b"\n")
        if last_newline >= 0:
            self._whole_bytes = self._landed_bytes + last_newline + 1
        self._landed_bytes += len(data)

    def _check_identity(self) -> None:
        """Fail when the path no longer names the file being written (deleted, or replaced by another)."""
        if self._identity is None:
            return
        try:
            status = os.stat(Path(self.path).expanduser())
        except FileNotFoundError:
            self._failed(f"{self.path} was deleted during the run; the {self.kept_lines} lines written to it "
                         "are gone", cut=False)
            return
        except OSError as error:
            self._failed(f"{_reason(error)} checking {self.path}", cut=False)
            return
        if (status.st_dev, status.st_ino) != self._identity:
            self._failed(f"{self.path} was replaced by another file during the run "
                         f"(the {self.kept_lines} lines written went to the file it replaced)", cut=False)

    def _failed(self, reason: str, cut: bool = True) -> None:
        """Cut a regular file back to its last whole line, close it, and raise ``OutputFailed``."""
        kept = self.kept_lines
        if cut and self._identity is not None:
            kept = self._cut_to_whole_lines()
        self._buffer.clear()
        self._close_fd()
        message = f"{reason}: {kept} lines kept" if cut else reason
        raise OutputFailed(message)

    def _cut_to_whole_lines(self) -> int:
        """Truncate the file after its last whole line (a write may have landed in part); its whole lines."""
        try:
            os.ftruncate(self._fd, self._whole_bytes)
        except OSError as error:
            LOGGER.warning("could not cut %s back to its last whole line: %s", self.path, _reason(error))
        return self.kept_lines

    def close(self) -> None:
        """Flush and close (standard output is only flushed); safe to call twice."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._close_fd()
        LOGGER.info("wrote %s to %s", plural(self.lines, "result line"), "stdout" if self.to_stdout else self.path)

    def _close_fd(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.to_stdout:
            os.close(self._fd)

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


def _reason(error: OSError) -> str:
    """``No space left on device`` -> ``no space left on device``, to sit inside a sentence."""
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]


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


def reopen_fifo(file_path: Path, path: str) -> int:
    """Open a FIFO again after a restart; fail when no reader comes within ``FIFO_READER_WAIT_S``.

    A reader such as ``cat fifo`` ends when the crashed display's end of the FIFO closes;
    a plain open would then wait for a new reader for ever, and the run would hang.  A
    reader that opens the FIFO again (a loop, a service) is given a few seconds to do so.
    """
    deadline_s = time.monotonic() + FIFO_READER_WAIT_S
    while True:
        try:
            fd = os.open(file_path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as error:
            if error.errno != errno.ENXIO:
                raise
            if time.monotonic() >= deadline_s:
                raise OutputFailed(f"{path}: nobody reads this FIFO any more (its reader ended when the display "
                                   "restarted); the lines written before went to it") from None
            time.sleep(FIFO_POLL_S)
    os.set_blocking(fd, True)  # from here on, a slow reader slows the display down, as before the restart
    return fd

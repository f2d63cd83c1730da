"""Hold back what a C library writes straight to file descriptor 2, and log it instead.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` on the raw
descriptor when an interpreter first allocates its tensors: Python's logging never sees
it, so ``--log-level`` cannot silence it and it lands between fakeblock's own lines.
:func:`logged_native_stderr` points descriptor 2 at a temporary file for the duration of
such a call and hands each captured line to a logger: lines starting with ``INFO:`` at
debug level, anything else at warning, so a real error from the library is never lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

STDERR_FD = 2
INFO_PREFIX = "INFO:"


def log_native_lines(text: str, logger: logging.Logger) -> None:
    """Log each non-empty line of ``text``: ``INFO:`` notices at debug, the rest as warnings."""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith(INFO_PREFIX):
            logger.debug("%s", line)
        else:
            logger.warning("%s", line)


@contextlib.contextmanager
def logged_native_stderr(logger: logging.Logger) -> Iterator[None]:
    """Run the body with descriptor 2 captured; afterwards log what was written to it."""
    sys.stderr.flush()
    saved_fd = os.dup(STDERR_FD)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), STDERR_FD)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, STDERR_FD)
            os.close(saved_fd)
            capture.seek(0)
            log_native_lines(capture.read().decode("utf-8", "replace"), logger)

"""Keep the live view whole: while it shows, every line written to stderr is printed above it.

The stages are processes of their own and log straight to the terminal; so do C libraries
(LiteRT's delegate notice) and this process's logging handler.  A line written under the
live view moves the cursor, so the next redraw starts one line too low and leaves a stale
copy of the view's top above it.  :class:`StderrRelay` points file descriptor 2 at a pipe
(the stages inherit it when they start), and a thread hands each line to ``print_line``:
the live console's ``print``, which puts it above the view.  Once the view is gone the
terminal is stderr again and what the stages still write goes straight through.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TextIO

LOGGER = logging.getLogger(__name__)
STDERR_FD = 2


class StderrRelay:
    """Stderr through a pipe to ``print_line`` until :meth:`restore`; ``terminal`` is the real stderr."""

    def __init__(self) -> None:
        self.terminal: TextIO = os.fdopen(os.dup(STDERR_FD), "w", buffering=1, errors="replace")
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, STDERR_FD)
        os.close(write_fd)
        self._reader = os.fdopen(read_fd, "r", errors="replace")
        self.print_line: Callable[[str], object] = self.terminal.write
        self._thread = threading.Thread(target=self._relay, name="stderr-relay", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        """Hand on every line until every writer has closed the pipe (the stages have exited)."""
        for line in self._reader:
            try:
                self.print_line(line)
            except Exception as error:  # noqa: BLE001 - a line that cannot be shown must not end the relay
                self.terminal.write(f"{line.rstrip()} [relay: {error}]\n")
        self._reader.close()

    def restore(self) -> None:
        """Stderr is the terminal again; lines still coming from the stages are written to it as they are."""
        self.print_line = self.terminal.write
        os.dup2(self.terminal.fileno(), STDERR_FD)

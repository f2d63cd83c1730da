"""Process titles: a stage shows in ``ps`` and ``top`` as ``fakeblock: detect/0``, the supervisor as ``fakeblock: up``.

The titles come from the ``setproctitle`` package.  Without it (a virtual environment made
before it became a dependency) the processes keep their interpreter's command line and a
debug line says why.  ``SPT_NOENV`` keeps ``/proc/<pid>/environ`` intact (the title then
fits in the original command line, which is always longer than these): it carries the
variables that tell a stage's supervisor and name (``FAKEBLOCK_SUPERVISOR_PID``,
``FAKEBLOCK_STAGE``) to ``ps e`` and to the tests.
"""

from __future__ import annotations

import logging
import os

LOGGER = logging.getLogger(__name__)
TITLE_PREFIX = "fakeblock: "
KEEP_ENVIRONMENT_VARIABLE = "SPT_NOENV"


def set_process_title(name: str) -> None:
    """Show this process as ``fakeblock: <name>``; a debug line when ``setproctitle`` is missing."""
    os.environ.setdefault(KEEP_ENVIRONMENT_VARIABLE, "1")  # read by setproctitle on its first use
    try:
        from setproctitle import setproctitle
    except ImportError:
        LOGGER.debug("setproctitle is not installed: %s keeps the interpreter's command line as its title", name)
        return
    setproctitle(TITLE_PREFIX + name)

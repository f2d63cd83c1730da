"""User-facing errors and the exit codes every process of fakeblock uses."""

from __future__ import annotations

CRASH_EXIT_CODE = 1  # a bug: the supervisor restarts the stage
USER_ERROR_EXIT_CODE = 2  # something the user can fix: one line on stderr
USER_QUIT_EXIT_CODE = 3  # the display's window was closed or `q` pressed: stop everything, exit 0
# An output failed during the run (the disk filled, the results file was deleted): the
# stage said why in one line; the supervisor stops everything, restarts nothing, exits 1.
OUTPUT_FAILED_EXIT_CODE = 4
# A run stopped by a signal exits 128 + its number, as shells report it: 130 for Ctrl-C
# (SIGINT), 143 for SIGTERM, so scripts can tell an interrupted run from a finished one.
SIGNAL_EXIT_BASE = 128


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM that arrived before a command had its own handlers in place
    (``fakeblock.control.cli.entry``); handled as Ctrl-C is, with its own exit code."""

    def __init__(self, signal_number: int):
        super().__init__(signal_number)
        self.signal_number = signal_number


class UserError(Exception):
    """Something the user can fix: a bad path, option, file or port.

    Every error meant for the user derives from it (``DataError``, ``TrainError``,
    ``ModelError``), so the CLI and a supervised stage report them the same way.
    """


class OutputFailed(UserError):
    """An output that worked at the start failed during the run: a full disk, a vanished results file.

    Restarting the stage would only fail again (or write into a file nobody reads), so the
    stage exits with ``OUTPUT_FAILED_EXIT_CODE`` and the run ends with exit code 1.
    """

    exit_code = OUTPUT_FAILED_EXIT_CODE

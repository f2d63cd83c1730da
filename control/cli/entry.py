"""The ``fakeblock`` command's entry point: signals are handled before anything heavy is imported.

Importing the CLI (typer, rich, the pipeline's modules) takes a few tenths of a second, and
the supervisor installs its own handlers only once its sockets are bound.  A Ctrl-C or a
SIGTERM before that must still end the command the way one during a run does: one line
and exit code 128 + the signal (130, 143), never a traceback, typer's silent 130 or a
death by the signal.  This module imports nothing heavy at its top, so its handlers are
in place within milliseconds of the interpreter's start.  While the supervisor runs, its
own handlers answer signals (and say where the run stopped); it puts these back after.
"""

from __future__ import annotations

import signal
import sys

from fakeblock.common import early_signals
from fakeblock.common.errors import SIGNAL_EXIT_BASE, Interrupted


def _interrupt(signal_number: int, _frame) -> None:
    early_signals.note(signal_number)  # the raise below can be swallowed: see early_signals
    raise Interrupted(signal_number)


def _say_interrupted(signal_number: int) -> None:
    print(f"interrupted ({signal.Signals(signal_number).name})", file=sys.stderr)
    sys.exit(SIGNAL_EXIT_BASE + signal_number)


def main() -> None:
    """Run the CLI; a signal outside the supervisor's run ends it with one line."""
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # left alone when a shell ignores it
        signal.signal(signal.SIGINT, _interrupt)
    try:
        from fakeblock.control.cli.app import main as run_app

        run_app()
    except (KeyboardInterrupt, SystemExit):
        # typer turns an interruption into a silent exit 130, whatever the signal; a signal the
        # supervisor took has had its answer (and its exit code) already.
        pending = early_signals.take()
        if not pending:
            raise
        _say_interrupted(pending[0])
    pending = early_signals.take()  # a signal whose exception Python swallowed ended nothing: say it now
    if pending:
        _say_interrupted(pending[0])


if __name__ == "__main__":
    main()

"""How the CLI reports user errors (one line on stderr, exit 2, never a traceback) and logs."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import signal
import sys

import typer

from fakeblock.common.errors import SIGNAL_EXIT_BASE, USER_ERROR_EXIT_CODE, Interrupted, UserError
from fakeblock.common.tensorflow_setup import TENSORFLOW_MODULES, missing_tensorflow, needs_tensorflow_message

VERBOSE_HELP = "Log debug messages too (default: info and above)."


@contextlib.contextmanager
def report_user_errors():
    """Turn user errors into ``error: <message>`` on stderr and exit code 2."""
    try:
        yield
    except KeyboardInterrupt as interruption:  # Ctrl-C, or a SIGTERM as fakeblock.control.cli.entry raises it
        number = getattr(interruption, "signal_number", signal.SIGINT)
        if not isinstance(interruption, Interrupted):  # the entry point words its own interruptions
            typer.echo(f"interrupted ({signal.Signals(number).name})", err=True)
        raise typer.Exit(SIGNAL_EXIT_BASE + number) from None
    except UserError as error:  # DataError, TrainError, ModelError and the rest derive from it
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(USER_ERROR_EXIT_CODE) from None


@contextlib.contextmanager
def tensorflow_required(command: str):
    """Turn TensorFlow or Keras missing while importing ``command``'s code into a ``UserError`` naming the extra.

    The base install runs the pipeline without TensorFlow; ``train`` and ``ensemble`` need
    the ``train`` extra, and say so in one line (inside ``report_user_errors``).
    """
    try:
        yield
    except ImportError as error:
        if not missing_tensorflow(error):
            raise
        logging.getLogger(__name__).debug("%s: %s", command, error)
        raise UserError(needs_tensorflow_message(command)) from None


def tensorflow_installed(command: str) -> None:
    """Refuse ``command`` in one line, before anything else is checked, when TensorFlow or Keras is absent.

    Finding a module costs no import, so ``train`` can say what to install first and then
    check its data before TensorFlow's seconds of start-up.
    """
    for name in TENSORFLOW_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a finder that refuses it; in sys.modules without a spec
            found = False
        if not found:
            raise UserError(needs_tensorflow_message(command))


# What a line from the command's own process says it comes from, by logger-name prefix: the
# part of fakeblock that speaks, not the module (stages name themselves, see child_main).
# Loggers of other packages, and every logger with --verbose, keep their full names.
# Longest prefix first: the first that matches wins.
SPEAKERS = (("fakeblock.control.supervisor", "supervisor"), ("fakeblock.control", "fakeblock"),
            ("fakeblock.train", "train"))


def speaker(logger_name: str) -> str:
    """The short name a log line of ``logger_name`` is shown with (see ``SPEAKERS``)."""
    for prefix, name in SPEAKERS:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return name
    return logger_name


class SpeakerFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL speaker: message``, the speaker as ``speaker`` names it."""

    def format(self, record: logging.LogRecord) -> str:
        record.speaker = speaker(record.name)
        return super().format(record)


def setup_logging(verbose: bool) -> None:
    """Log to stderr; INFO by default, DEBUG with --verbose (then with full logger names)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
                         if verbose else SpeakerFormatter("%(asctime)s %(levelname)s %(speaker)s: %(message)s",
                                                          "%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])

"""User-facing errors: one clear line on stderr and a non-zero exit, never a traceback; CLI logging."""

from __future__ import annotations

import contextlib
import logging
import sys

import typer

LOGGER = logging.getLogger(__name__)
USER_ERROR_EXIT_CODE = 2


class UserError(Exception):
    """Something the user can fix: a bad path, option, file or port.

    Every error meant for the user derives from it (``DataError``, ``TrainError``,
    ``ModelError``), so the CLI and a supervised stage report them the same way.
    """


@contextlib.contextmanager
def report_user_errors():
    """Turn user errors into ``error: <message>`` on stderr and exit code 2."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except UserError as error:  # DataError, TrainError, ModelError and the rest derive from it
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(USER_ERROR_EXIT_CODE) from None


def setup_logging(verbose: bool) -> None:
    """Log to stderr; INFO by default, DEBUG with --verbose."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")

"""User-facing errors: one clear line on stderr and a non-zero exit, never a traceback; CLI logging."""

from __future__ import annotations

import contextlib
import logging
import sys

import typer

LOGGER = logging.getLogger(__name__)
USER_ERROR_EXIT_CODE = 2


class UserError(Exception):
    """Something the user can fix: a bad path, option, file or port."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception type that carries a message meant for the user."""
    types: list[type[BaseException]] = [UserError]
    for module, name in (("fakeblock.train.data", "DataError"), ("fakeblock.train.run", "TrainError"),
                         ("fakeblock.classify.runtime", "ModelError")):
        module_object = __import__(module, fromlist=[name]) if module in _loaded_modules() else None
        if module_object is not None:
            types.append(getattr(module_object, name))
    return tuple(types)


def _loaded_modules() -> set[str]:
    return set(sys.modules)


@contextlib.contextmanager
def report_user_errors():
    """Turn user errors into ``error: <message>`` on stderr and exit code 2."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as error:
        if isinstance(error, _user_error_types()):
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(USER_ERROR_EXIT_CODE) from None
        raise


def setup_logging(verbose: bool) -> None:
    """Log to stderr; INFO by default, DEBUG with --verbose."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")

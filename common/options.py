"""The option table: each setting of a stage described once, on its config dataclass field.

A field made with :func:`option` carries its help text, limits and command-line form;
from these the ``fakeblock up`` options, the site file's keys and ranges and the
``FAKEBLOCK_<STAGE>_<KEY>`` environment variables are all built (see
:mod:`fakeblock.control.cli.up_options` and :mod:`fakeblock.control.site.schema`).
A field made with :func:`derived` is worked out by ``fakeblock up`` itself and can be set
neither on the command line nor in the file.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

OPTION_METADATA_KEY = "fakeblock.option"
SAME_AS_FIELD = object()  # the command line's default is the field's own


@dataclass(frozen=True)
class Option:
    """How one setting is offered.

    ``flags`` are its command-line names (default ``--field-name``); ``command_line``
    False keeps it to the site file and the environment.  ``command_line_default``
    differs from the field's where the command decides later (``--source`` None: camera
    0, else the demo).  ``words`` offers a bool as ``on``/``off``; ``comma_list`` a tuple
    of strings as ``a,b``.
    """

    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    flags: tuple[str, ...] = ()
    command_line: bool = True
    command_line_default: Any = SAME_AS_FIELD
    metavar: str | None = None
    words: bool = False
    comma_list: bool = False
    derived: bool = False


def option(default: Any, help: str, **settings: Any) -> Any:
    """A dataclass field with default ``default`` described by an :class:`Option`."""
    return dataclasses.field(default=default, metadata={OPTION_METADATA_KEY: Option(help, **settings)})


def derived(default: Any, help: str) -> Any:
    """A field ``fakeblock up`` works out (from the outputs, the source, the site): never set by hand."""
    return option(default, help, command_line=False, derived=True)


def option_of(dataclass_field: dataclasses.Field) -> Option | None:
    """The :class:`Option` of a field, or None for a field outside the table."""
    return dataclass_field.metadata.get(OPTION_METADATA_KEY)


def table_of(config_class: type) -> list[tuple[dataclasses.Field, Option]]:
    """Every field of ``config_class`` in the table, in declaration order."""
    pairs = [(dataclass_field, option_of(dataclass_field)) for dataclass_field in dataclasses.fields(config_class)]
    return [(dataclass_field, described) for dataclass_field, described in pairs if described is not None]


@dataclass(frozen=True)
class TableEntry:
    """One field of the table: its config class, the field, its :class:`Option` and its type."""

    config_class: type
    field: dataclasses.Field
    option: Option
    annotation: Any

    @property
    def name(self) -> str:
        """The setting's name everywhere: its field's (``--min-size`` is a flag of ``min_size_px``)."""
        return self.field.name


def entries_of(config_class: type) -> list[TableEntry]:
    """Every field of ``config_class`` in the table, with its resolved type, in declaration order."""
    hints = typing.get_type_hints(config_class)
    return [TableEntry(config_class, dataclass_field, described, hints[dataclass_field.name])
            for dataclass_field, described in table_of(config_class)]

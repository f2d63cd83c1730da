"""How the CLI's plain help behaves where typer's or click's own way would puzzle a user.

Typer's plain help (``rich_markup_mode=None``, see ``app.py``) lists the commands in one
block in the order they were made, and ignores ``rich_help_panel``.  :class:`CommandGroup`
lists them in sections by use instead: a command's ``rich_help_panel`` names its section,
and the sections come in ``SECTION_ORDER``.  Run with no arguments, a group prints its help
on stdout and exits 0 (click's own way is stderr and exit 2, as for a mistake).

Typer also writes a required argument as ``{PATH}`` on the usage line and adds its type in
the argument list (``PATH <list[str]>``).  :class:`PlainHelpCommand` shows an argument by
its name alone, as a usage line conventionally does: ``PATH...``, ``FILE``, ``[FILE]``.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

# The sections of `fakeblock --help`, in this order; a command without one goes under COMMANDS_SECTION.
RUN_SECTION = "Find faces and emotions"
WATCH_SECTION = "Watch and secure a running pipeline"
TRAIN_SECTION = "Train and score models"
COMMANDS_SECTION = "Commands"
SECTION_ORDER = (RUN_SECTION, WATCH_SECTION, TRAIN_SECTION, COMMANDS_SECTION)
# The room click's command list leaves beside a command's summary (its indent and the gap), as typer counts it.
COMMAND_LIST_MARGIN_CHARS = 6

# typer bundles its own click, whose Context and HelpFormatter are private: the overrides take Any.


def argument_name(argument: Any) -> str:
    """An argument as the usage line and the argument list show it: ``PATH...``, ``FILE``, ``[FILE]``."""
    name = argument.metavar or argument.name.upper()
    if argument.nargs != 1:
        name += "..."
    return name if argument.required else f"[{name}]"


class PlainHelpCommand(TyperCommand):
    """A command whose help names its arguments without braces or types."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """The words after the command's name on the usage line."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for parameter in self.get_params(ctx):
            if parameter.param_type_name == "argument":
                pieces.append(argument_name(parameter))
            else:
                pieces.extend(parameter.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """The Arguments and Options lists: a row per parameter, its name and its help."""
        arguments, options = [], []
        for parameter in self.get_params(ctx):
            record = parameter.get_help_record(ctx)
            if record is None:
                continue
            if parameter.param_type_name == "argument":
                arguments.append((argument_name(parameter), record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def section_of(command: Any) -> str:
    """The help section a command is listed in: its ``rich_help_panel``, else COMMANDS_SECTION."""
    return getattr(command, "rich_help_panel", None) or COMMANDS_SECTION


class CommandGroup(TyperGroup):
    """A group that lists its commands in sections by use and answers a bare call with its help."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """With no arguments at all: the help on stdout and exit 0."""
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            typer.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """A section per use, a row per command and its summary, the summaries lined up across sections."""
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        shown = [(name, command) for name, command in commands if command is not None and not command.hidden]
        if not shown:
            return
        width = max(len(name) for name, _ in shown)
        limit = formatter.width - COMMAND_LIST_MARGIN_CHARS - width
        # The known sections first, in their order, then any other panel in the order it is first met.
        sections = dict.fromkeys([*SECTION_ORDER, *(section_of(command) for _, command in shown)])
        for section in sections:
            rows = [(name.ljust(width), command.get_short_help_str(limit)) for name, command in shown
                    if section_of(command) == section]
            if rows:
                with formatter.section(section):
                    formatter.write_dl(rows)

"""How the CLI's plain help behaves where typer's or click's own way would puzzle a user.

Typer's plain help (``rich_markup_mode=None``, see ``app.py``) lists the commands in one
block in the order they were made, and ignores ``rich_help_panel``.  :class:`CommandGroup`
lists them in sections by use instead: a command's ``rich_help_panel`` names its section,
and the sections come in ``SECTION_ORDER``.  Run with no arguments, a group prints its help
on stdout and exits 0 (click's own way is stderr and exit 2, as for a mistake).
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

# The sections of `fakeblock --help`, in this order; a command without one goes under COMMANDS_SECTION.
RUN_SECTION = "Find faces and emotions"
WATCH_SECTION = "Watch and secure a running pipeline"
TRAIN_SECTION = "Train and score models"
COMMANDS_SECTION = "Commands"
SECTION_ORDER = (RUN_SECTION, WATCH_SECTION, TRAIN_SECTION, COMMANDS_SECTION)
# The room click's command list leaves beside a command's summary (its indent and the gap), as typer counts it.
COMMAND_LIST_MARGIN_CHARS = 6

# typer bundles its own click, whose Context and HelpFormatter are private: the overrides take Any.


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

"""How the CLI's plain help behaves where click's own way would surprise a user.

Run with no arguments, a group prints its help on stdout and exits 0 (click's own way is
stderr and exit 2, as for a mistake).
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

# typer bundles its own click, whose Context and HelpFormatter are private: the overrides take Any.


class CommandGroup(TyperGroup):
    """A group that answers a bare call with its help and exit code 0."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """With no arguments at all: the help on stdout and exit 0."""
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            typer.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(0)
        return super().parse_args(ctx, args)

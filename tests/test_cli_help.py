"""Every command's ``--help`` names its option values in plain words (PATH, N, FILE), not types.

(Typer prints a positional argument's type after its name whatever its metavar, so only the
option rows are checked.)
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from fakeblock.control.cli.app import app

pytestmark = pytest.mark.timeout(120)
COMMANDS = [["train"], ["ensemble"], ["eval"], ["up"], ["analyze"], ["status"], ["report"], ["keys", "generate"]]
# What click prints for an option without a metavar: <path>, <int range>, <list[Path]>, <float>...
TYPE_PLACEHOLDER = re.compile(r"<(path|int|float|str|text|list|integer)[^>]*>", re.IGNORECASE)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_plain_words_for_option_values(command):
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "Options" in result.output
    options = [line for line in result.output.splitlines() if line.lstrip().startswith("-")]
    assert options, result.output
    assert not [line for line in options if TYPE_PLACEHOLDER.search(line)], result.output

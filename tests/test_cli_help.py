"""The help a new user meets: ``--version``, ``-h``, a bare ``fakeblock``, and every command's
``--help`` naming its values in plain words (PATH, N, FILE), not types.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fakeblock
from fakeblock.control.cli.app import app

pytestmark = pytest.mark.timeout(120)
REPOSITORY = Path(__file__).resolve().parent.parent
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


def test_version_prints_the_package_version_and_exits_0():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"fakeblock {fakeblock.__version__}\n"


def test_the_version_has_one_source_that_the_package_metadata_agrees_with():
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    assert project["version"] == fakeblock.__version__


@pytest.mark.parametrize("command", [[], *COMMANDS, ["keys"]], ids=lambda command: " ".join(command) or "app")
def test_dash_h_is_help(command):
    result = CliRunner().invoke(app, [*command, "-h"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ") and "-h, --help" in result.output, result.output
    assert result.output == CliRunner().invoke(app, [*command, "--help"], terminal_width=120).output


@pytest.mark.parametrize("command", [[], ["keys"]], ids=lambda command: " ".join(command) or "app")
def test_a_bare_group_prints_its_help_on_stdout_and_exits_0(command):
    result = CliRunner().invoke(app, command, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("Usage: ") and "Commands" in result.stdout, result.stdout

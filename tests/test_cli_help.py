"""The help a new user meets: ``--version``, ``-h``, a bare ``fakeblock``, and every command's
``--help`` naming its values in plain words (PATH, N, FILE), not types.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import fakeblock
from fakeblock.control.cli.app import app

pytestmark = pytest.mark.timeout(120)
REPOSITORY = Path(__file__).resolve().parent.parent
COMMANDS = [["train"], ["ensemble"], ["eval"], ["up"], ["analyze"], ["status"], ["report"], ["keys", "generate"]]
WITH_ARGUMENTS = [["analyze"], ["report"], ["keys", "generate"]]
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


@pytest.mark.parametrize("command", WITH_ARGUMENTS, ids=" ".join)
def test_usage_and_arguments_name_values_without_braces_or_types(command):
    lines = CliRunner().invoke(app, [*command, "--help"], terminal_width=120).stdout.splitlines()
    usage = lines[0]
    assert usage.startswith("Usage: ") and command[-1] in usage
    assert "{" not in usage and not TYPE_PLACEHOLDER.search(usage), usage
    arguments = lines[lines.index("Arguments:") + 1:lines.index("Options:")]
    rows = [line for line in arguments if line.startswith("  ") and not line.startswith("   ")]
    assert rows, lines
    assert not [row for row in rows if TYPE_PLACEHOLDER.search(row) or "{" in row], arguments


def test_a_list_argument_reads_as_a_repeated_word():
    usage = CliRunner().invoke(app, ["analyze", "--help"], terminal_width=120).stdout.splitlines()[0]
    assert usage.endswith("analyze [OPTIONS] PATH..."), usage


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_option_says_its_default(command):
    click_command = _commands(typer.main.get_command(app))[" ".join(command)]
    context = typer.Context(click_command, info_name=command[-1])
    # "instead of X" names the default too (--json: instead of tables).
    silent = [record for record in map(lambda parameter: parameter.get_help_record(context),
                                       click_command.get_params(context))
              if record and record[0] != "--help" and not re.search(r"default|required|instead of", record[1])]
    assert not silent


def test_results_and_display_say_what_their_default_and_dash_do():
    text = " ".join(CliRunner().invoke(app, ["up", "--help"], terminal_width=1000).stdout.split())
    assert "--results FILE" in text and "stdout if FILE is -" in text
    assert "--source PATH|URL|CAMERA" in text
    assert "a window falls back to the web view" in text


def test_jargon_is_explained_where_it_appears():
    pages = {" ".join(command): " ".join(CliRunner().invoke(app, [*command, "--help"], terminal_width=1000)
                                         .stdout.split()) for command in [[], *COMMANDS, ["keys"]]}
    explained = {"Haar cascade": "a fast classic face detector", "CurveZMQ": "ZeroMQ's",
                 "(TTA)": "Test-time augmentation", "macro recall": "the mean of the emotions' recalls",
                 "int8": "8-bit", "ZeroMQ (": "a message library", "Distil": "learn from its scores"}
    missing = [(page, term) for page, text in pages.items() for term, gloss in explained.items()
               if term in text and gloss not in text]
    assert not missing
    assert all(any(term in text for text in pages.values()) for term in explained)


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
    assert result.stdout.startswith("Usage: ") and _command_rows(result.stdout), result.stdout


def _command_rows(help_text: str) -> dict[str, str]:
    """Command name -> summary, from the command lists of a group's help."""
    rows, in_list = {}, False
    for line in help_text.splitlines():
        if line and not line.startswith(" "):
            in_list = line.endswith(":") and line not in ("Options:", "Arguments:")
        elif in_list and line.strip():
            name, _, summary = line.strip().partition(" ")
            rows[name] = summary.strip()
    return rows


@pytest.mark.parametrize("group", [[], ["keys"]], ids=lambda group: " ".join(group) or "app")
def test_command_summaries_are_whole_sentences_at_80_columns(group):
    # No terminal_width: click then measures the terminal, here COLUMNS, as it does for a user.
    result = CliRunner().invoke(app, [*group, "--help"], env={"COLUMNS": "80"})
    rows = _command_rows(result.stdout)
    assert rows, result.stdout
    cut = {name: summary for name, summary in rows.items() if summary.endswith(("...", "…"))
           or not summary.endswith(".")}
    assert not cut, result.stdout


def _commands(group, prefix=()) -> dict[str, object]:
    """Every command under ``group``, by its words (``keys generate``), groups too."""
    found = {}
    for name, command in group.commands.items():
        found[" ".join((*prefix, name))] = command
        if hasattr(command, "commands"):
            found.update(_commands(command, (*prefix, name)))
    return found


def test_summaries_fit_the_short_form_shells_and_narrow_terminals_get():
    # click's default limit, 45 characters: the summary of shell completion and of a 59-column terminal.
    commands = _commands(typer.main.get_command(app))
    assert {"up", "analyze", "keys generate"} <= set(commands)
    cut = {name: command.get_short_help_str() for name, command in commands.items()
           if command.get_short_help_str().endswith("...")}
    assert not cut


def test_commands_are_listed_by_use_with_up_first():
    rows = list(_command_rows(CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"}).stdout))
    assert rows[0] == "up"
    assert rows == ["up", "analyze", "report", "status", "keys", "train", "eval", "ensemble"]

"""A Ctrl-C or SIGTERM in the first second of ``fakeblock up``, before the supervisor's own
handlers are in place: one line, exit code 128 + the signal, no traceback, no stage left.

Two things outside the command are kept out of the way.  A shell runs a background job
with SIGINT ignored (and the command then rightly leaves it ignored), so the child starts
with SIGINT at its default whatever the test runner inherited.  And a signal can land in
the interpreter's own start-up, before the command's handlers are in place (they are the
first thing it does, some 30 ms in; on a loaded machine 0.05 s can still be before that):
Python then dies of it as any script does, so that try is made again a little later.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import fakeblock, kill_if_running, orphans_of

DELAYS_S = (0.05, 0.25, 0.6)  # during the imports, the command's start, the supervisor's set-up
EXIT_TIMEOUT_S = 60
LATER_S = 0.05  # how much later to try again when the signal came before the command's code ran
TRIES = 8


def default_sigint() -> None:
    """In the child before it runs Python: SIGINT as a terminal's Ctrl-C finds it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signalled_run(signal_number: int, delay_s: float) -> tuple[int, str]:
    """Start ``fakeblock up`` on the demo, send ``signal_number`` after ``delay_s``; its exit code and output."""
    process = subprocess.Popen(fakeblock("up", "--source", "demo", "--display", "none", "--results", os.devnull,
                                         "--no-status"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, preexec_fn=default_sigint)
    try:
        time.sleep(delay_s)
        process.send_signal(signal_number)
        output, _ = process.communicate(timeout=EXIT_TIMEOUT_S)
    finally:
        kill_if_running(process)
    assert not orphans_of(process.pid)
    return process.returncode, output


def before_the_handlers(returncode: int, output: str, signal_number: int) -> bool:
    """The signal came before the command's handlers were in place: the process died of it
    (SIGTERM), or of Python's own KeyboardInterrupt (exit -2, or 1 when it came during the
    ``site`` import), never of the command's ``Interrupted`` and without the command's line."""
    if "Interrupted" in output or "interrupted" in output:
        return False
    return returncode == -signal_number or output.rstrip().endswith("KeyboardInterrupt")


@pytest.mark.slow  # starts `fakeblock up` three times per signal
@pytest.mark.timeout(300)
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_command_starts_is_one_line_and_its_exit_code(signal_number):
    for delay_s in DELAYS_S:
        for _ in range(TRIES):
            returncode, output = signalled_run(signal_number, delay_s)
            if not before_the_handlers(returncode, output, signal_number):
                break
            delay_s += LATER_S
        name = signal.Signals(signal_number).name
        assert returncode == 128 + signal_number, (delay_s, returncode, output[-2000:])
        assert "Traceback" not in output, (delay_s, output[-3000:])
        last = output.strip().splitlines()[-1]
        assert last == f"interrupted ({name})" or re.search(r"interrupted at frame \d+", last), (delay_s, output)


SWALLOWED = """
import signal, sys
from fakeblock.common import early_signals
from fakeblock.control.cli import entry
# What the handler leaves behind when Python swallows its exception (raised inside a weakref
# callback during an import, say): the signal noted, nothing raised.
early_signals.note(signal.{name})
sys.argv = ["fakeblock", *sys.argv[1:]]
entry.main()
"""


def swallowed_run(name: str, *arguments: str) -> subprocess.CompletedProcess:
    """The command after a start-up signal whose exception Python swallowed."""
    return subprocess.run([sys.executable, "-c", SWALLOWED.format(name=name), *arguments], capture_output=True,
                          text=True, timeout=EXIT_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)


def test_a_swallowed_signal_still_ends_a_command_that_runs_no_pipeline():
    done = swallowed_run("SIGTERM", "--version")
    assert done.returncode == 128 + signal.SIGTERM, done
    assert done.stderr.strip().splitlines()[-1] == "interrupted (SIGTERM)"


@pytest.mark.slow  # starts the pipeline
def test_a_swallowed_signal_is_answered_by_the_supervisor_once_it_takes_over(tmp_path):
    results = tmp_path / "results.jsonl"
    done = swallowed_run("SIGINT", "up", "--source", "demo", "--display", "none", "--results", str(results),
                         "--no-status")
    assert done.returncode == 128 + signal.SIGINT, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert re.search(r"interrupted at frame \d+", done.stderr.strip().splitlines()[-1]), done.stderr[-2000:]

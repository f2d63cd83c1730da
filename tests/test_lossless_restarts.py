"""Fault injection: SIGKILL any stage's worker in the middle of a lossless replay.

Each run must exit 0 on its own with a results file byte-identical to an uninterrupted
run's: the supervisor restarts the worker and the source sends its stream again in a new
epoch (control/supervisor/rewinds.py). A killed display keeps the lines it wrote; a killed
capture starts again.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import (
    MEDIA,
    fakeblock,
    kill_if_running,
    line_count,
    orphans_of,
    shared_file,
    wait_for_no_orphans,
    wait_until,
)

KILL_AFTER_LINES = 120  # of 464: well inside the replay
RUN_TIMEOUT_S = 180


def replay(video: Path, results: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen(fakeblock("up", "--source", str(video), "--display", "none", "--results", str(results),
                                      "--no-status", *options),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(process: subprocess.Popen) -> str:
    """Wait for ``process`` to exit on its own; its stderr."""
    try:
        _stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        kill_if_running(process)
    return stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[tuple[str, ...], bytes]:
    """Uninterrupted replays' results, by options (made on first use)."""
    return {}


def clean_results(reference: dict, video: Path, folder: Path, options: tuple[str, ...]) -> bytes:
    if options not in reference:
        results = folder / f"clean{len(reference)}.jsonl"
        process = replay(video, results, *options)
        stderr = finish(process)
        assert process.returncode == 0, stderr[-3000:]
        reference[options] = results.read_bytes()
    return reference[options]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("victim", "options"), [
    ("capture", ()), ("detect", ()), ("queue", ()), ("classify", ()), ("display", ()),
    ("detect/0", ("--detect-workers", "2")), ("detect/1", ("--detect-workers", "2")),
])
def test_a_worker_killed_mid_replay_changes_nothing_in_the_results(victim, options, reference, tmp_path_factory):
    video = shared_file(MEDIA / "office-woman.mp4")
    folder = tmp_path_factory.mktemp("lossless")
    expected = clean_results(reference, video, folder, options)
    results = folder / "killed.jsonl"
    process = replay(video, results, *options)
    wait_until(lambda: line_count(results) >= KILL_AFTER_LINES, 120, f"{KILL_AFTER_LINES} lines", process)
    victims = orphans_of(process.pid, victim)
    assert victims, f"no {victim} process under {process.pid}"
    written_before = results.read_text()
    written_before = written_before[:written_before.rfind("\n") + 1]
    os.kill(victims[0], signal.SIGKILL)
    stderr = finish(process)
    print(f"{victim} killed after {len(written_before.splitlines())} lines; exit {process.returncode}")
    assert process.returncode == 0, stderr[-3000:]
    assert "restarting" in stderr and "send their streams again" in stderr, stderr[-3000:]
    text = results.read_text()
    assert text.startswith(written_before), "lines written before the kill were lost"
    assert text.encode() == expected, "the results differ from an uninterrupted replay"
    assert "Traceback" not in stderr
    wait_for_no_orphans(process.pid)

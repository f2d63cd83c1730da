"""``fakeblock up`` with its results on a full disk or on /dev/full: one line, a quick non-zero exit,
no restart of the display, whole lines only, nothing left running."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import MEDIA, OFFICE_FRAMES, fakeblock, shared_file
from tests.test_results_faults import small_disk

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
RUN_TIMEOUT_S = 200


def replay(results: str) -> subprocess.CompletedProcess:
    video = shared_file(MEDIA / "office-woman.mp4")
    return subprocess.run(fakeblock("up", "--source", str(video), "--display", "none", "--results", results,
                                    "--no-status"), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def assert_failed_once(run: subprocess.CompletedProcess, line: str) -> None:
    errors = [text for text in run.stderr.splitlines() if text.startswith("error: ")]
    assert run.returncode == 1, run.stderr[-3000:]  # the run failed (2 is kept for bad input)
    assert errors == [line], run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "restarting" not in run.stderr, run.stderr[-3000:]


def test_a_replay_onto_a_full_disk_stops_with_one_line_and_whole_lines(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        results = disk / "results.jsonl"
        run = replay(str(results))
        data = results.read_bytes()
        kept = len(data.splitlines())
        assert_failed_once(run, f"error: no space left on device writing {results}: {kept} lines kept")
        assert data.endswith(b"\n") and 0 < kept < OFFICE_FRAMES
        assert [json.loads(line)["frame"] for line in data.splitlines()] == list(range(kept))
        print(f"full disk: exit {run.returncode}, {kept} of {OFFICE_FRAMES} lines kept")


def test_a_replay_onto_dev_full_stops_with_one_line():
    assert_failed_once(replay("/dev/full"), "error: no space left on device writing /dev/full: 0 lines kept")

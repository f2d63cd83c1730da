"""``fakeblock up`` with its results on a full disk or on /dev/full: one line, a quick non-zero exit,
no restart of the display, whole lines only, nothing left running; and on a pipe whose
display is killed: no hang, a warning, every frame delivered in whole lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading

import pytest

from tests.helpers import MEDIA, OFFICE_FRAMES, fakeblock, kill_if_running, orphans_of, shared_file, wait_until
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


def test_a_display_killed_while_writing_to_a_pipe_goes_on_without_reading_it():
    # `--results /dev/stdout | cat`. Before: the restarted display blocked reading the pipe to resume: a hang.
    video = shared_file(MEDIA / "office-woman.mp4")
    process = subprocess.Popen(fakeblock("up", "--source", str(video), "--display", "none", "--results", "/dev/stdout",
                                         "--no-status"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    received: list[bytes] = []
    errors: list[bytes] = []
    readers = [threading.Thread(target=lambda: received.extend(process.stdout), daemon=True),
               threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        wait_until(lambda: len(received) >= 120, 120, "120 lines through the pipe", process)
        displays = orphans_of(process.pid, "display")
        assert displays, f"no display process under {process.pid}"
        os.kill(displays[0], signal.SIGKILL)
        process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        kill_if_running(process)
    for reader in readers:
        reader.join(timeout=10)
    stderr = b"".join(errors).decode()
    assert process.returncode == 0, stderr[-3000:]
    assert "cannot be checked" in stderr and "Traceback" not in stderr, stderr[-3000:]
    assert all(line.endswith(b"\n") for line in received), "a line reached the pipe cut"
    frames = [json.loads(line)["frame"] for line in received]
    assert set(frames) == set(range(OFFICE_FRAMES)), "frames are missing from the pipe"
    print(f"pipe: exit 0, {len(frames)} lines for {OFFICE_FRAMES} frames after a display kill")


def test_a_display_killed_after_its_fifo_reader_ended_stops_the_run_in_one_line(tmp_path):
    # `--results fifo` read by `cat fifo`: cat ends with the crash, and the restarted display
    # waited for a new reader for ever. Now it waits a few seconds, then the run fails.
    video = shared_file(MEDIA / "office-woman.mp4")
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.extend(open(fifo, "rb")), daemon=True)
    reader.start()
    process = subprocess.Popen(fakeblock("up", "--source", str(video), "--display", "none", "--results", str(fifo),
                                         "--no-status"), stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until(lambda: len(received) >= 120, 120, "120 lines through the FIFO", process)
        displays = orphans_of(process.pid, "display")
        assert displays, f"no display process under {process.pid}"
        os.kill(displays[0], signal.SIGKILL)
        _stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        kill_if_running(process)
    reader.join(timeout=10)
    errors = [text for text in stderr.splitlines() if text.startswith("error: ")]
    assert process.returncode == 1, stderr[-3000:]
    assert errors == [f"error: {fifo}: nobody reads this FIFO any more (its reader ended when the display "
                      "restarted); the lines written before went to it"], stderr[-3000:]
    assert "Traceback" not in stderr
    assert all(line.endswith(b"\n") for line in received) and len(received) >= 120
    print(f"FIFO without a reader: exit 1 after the display kill, {len(received)} lines had gone to it")

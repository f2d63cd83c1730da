"""``fakeblock up`` end to end on real video: results, exit codes, workers, no orphans."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from itertools import pairwise
from pathlib import Path

import pytest

from tests.helpers import (
    MEDIA,
    OFFICE_FRAMES,
    fakeblock,
    kill_if_running,
    line_count,
    orphans_of,
    read_results,
    shared_file,
    wait_for_no_orphans,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
RESULTS_TIMEOUT_S = 120


def stderr_tail(process: subprocess.Popen) -> str:
    """The end of what an exited ``fakeblock up`` wrote to its standard error."""
    return process.stderr.read()[-3000:]


def wait_for_results(results: Path, count: int, process: subprocess.Popen) -> None:
    """Wait until ``results`` holds ``count`` lines; fails naming them, or at once if ``up`` exits first."""
    wait_until(lambda: line_count(results) >= count, RESULTS_TIMEOUT_S, f"{count} lines in {results}", process,
               interval_s=0.1, describe=stderr_tail)
# A stop ends within 3 s of the last progress, and the drain waits 1.5 s without any:
# 4.5 s after a signal, with room for a loaded machine.
STOP_BOUND_S = 6.0


def signal_and_wait(process: subprocess.Popen, signal_number: int) -> tuple[str, float]:
    """Send ``signal_number`` as a user would (SIGINT to the process group, as Ctrl-C does; SIGTERM
    to the supervisor alone, as kill, systemd and docker do) and wait for the exit.

    Returns ``up``'s stderr and the seconds from the signal to the exit.
    """
    signalled_s = time.monotonic()
    if signal_number == signal.SIGINT:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal_number)
    _stdout, stderr = process.communicate(timeout=60)
    return stderr, time.monotonic() - signalled_s


def run_up(tmp_path: Path, name: str, *extra: str) -> tuple[subprocess.CompletedProcess, list[dict], int]:
    results = tmp_path / f"{name}.jsonl"
    video = shared_file(MEDIA / "office-woman.mp4")
    process = subprocess.Popen(fakeblock("up", "--source", str(video), "--display", "none", "--results", str(results),
                                         "--no-status", *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    stdout, stderr = process.communicate(timeout=400)
    completed = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return completed, (read_results(results) if results.exists() else []), process.pid


@pytest.fixture(scope="module")
def single_worker_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("single")
    completed, results, pid = run_up(tmp_path, "one", "--stats", str(tmp_path / "stats.json"))
    return completed, results, pid, tmp_path


def test_replay_writes_one_line_per_frame_in_order(single_worker_run):
    completed, results, pid, tmp_path = single_worker_run
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(results) == OFFICE_FRAMES
    assert [line["frame"] for line in results] == list(range(OFFICE_FRAMES))
    assert {line["stream"] for line in results} == {"office-woman"}
    assert sum(1 for line in results if line["faces"]) >= 460
    assert results[30]["time_s"] == pytest.approx(30 / 29.97, abs=0.01)
    face = next(line for line in results if line["faces"])["faces"][0]
    assert set(face["scores"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert set(face["scores_raw"]) == set(face["scores"])
    assert face["emotion"] == max(face["scores"], key=face["scores"].get)
    # One woman in the clip: one face a frame (no second box over her chin), one track throughout.
    assert all(len(line["faces"]) <= 1 for line in results)
    assert {face["track"] for line in results for face in line["faces"]} == {1}
    assert orphans_of(pid) == []


def test_stats_file_summarises_the_run(single_worker_run):
    completed, _results, _pid, tmp_path = single_worker_run
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames_in"] == OFFICE_FRAMES and stats["frames_out"] == OFFICE_FRAMES
    assert stats["latency_ms"]["p50"] > 0 and stats["latency_ms"]["p99"] >= stats["latency_ms"]["p50"]
    assert stats["options"]["detect_workers"] == 1
    assert all(count == 0 for count in stats["dropped"].values())


def test_two_detect_workers_give_the_same_results(single_worker_run, tmp_path):
    _completed, reference, _pid, _ = single_worker_run
    completed, results, pid = run_up(tmp_path, "two", "--detect-workers", "2", "--classify-workers", "2")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert [line["frame"] for line in results] == list(range(OFFICE_FRAMES))
    # Tracking keeps a stream on one detect worker, so every line is the same: boxes,
    # track ids, smoothed and raw scores.
    assert results == reference
    assert orphans_of(pid) == []


def test_tracking_off_scans_every_frame_and_tracking_steadies_the_emotions(single_worker_run, tmp_path):
    _completed, tracked, _pid, _ = single_worker_run
    completed, untracked, pid = run_up(tmp_path, "off", "--tracking", "off")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(untracked) == OFFICE_FRAMES
    assert all("track" not in face and "scores_raw" not in face for line in untracked for face in line["faces"])
    # Frames where the full-frame scan finds her, the tracked replay does too.
    assert all(mine["faces"] for mine, theirs in zip(tracked, untracked, strict=True) if theirs["faces"])

    def label_changes(lines: list[dict]) -> int:
        labels = [line["faces"][0]["emotion"] for line in lines if line["faces"]]
        return sum(first != second for first, second in pairwise(labels))

    assert label_changes(tracked) <= label_changes(untracked) / 2
    assert orphans_of(pid) == []


def test_recording_writes_an_annotated_video_with_every_frame(tmp_path):
    import cv2

    video = tmp_path / "annotated.mp4"
    completed, results, _pid = run_up(tmp_path, "recorded", "--record", str(video))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(results) == OFFICE_FRAMES
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == OFFICE_FRAMES
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape[:2] == (336, 596)


def test_ctrl_c_on_a_live_source_stops_cleanly_with_no_orphans(tmp_path):
    results = tmp_path / "live.jsonl"
    process = subprocess.Popen(fakeblock("up", "--source", "demo", "--realtime", "--display", "none",
                                         "--results", str(results), "--no-status"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_results(results, 20, process)
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-3000:]  # 128 + SIGINT: scripts can tell it from a finished run
    assert "Traceback" not in stderr
    assert re.search(r"interrupted at frame \d+; \d+ results written", stderr), stderr[-3000:]
    lines = read_results(results)
    assert len(lines) >= 20
    assert [line["frame"] for line in lines] == sorted(line["frame"] for line in lines)
    wait_for_no_orphans(process.pid)


@pytest.mark.parametrize("stage_down", [False, True], ids=["healthy", "classify-down"])
@pytest.mark.parametrize(("signal_number", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_replay_stops_quickly_with_a_valid_partial_results_file(tmp_path, signal_number, exit_code,
                                                                             stage_down):
    results = tmp_path / "partial.jsonl"
    video = shared_file(MEDIA / "office-woman.mp4")
    process = subprocess.Popen(fakeblock("up", "--source", str(video), "--tracking", "off", "--display", "none",
                                         "--results", str(results), "--no-status"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_results(results, 20, process)
        if stage_down:  # the work the classify worker held is lost: the drain can never finish
            victims = orphans_of(process.pid, "classify")
            assert victims, "no classify process found"
            os.kill(victims[0], signal.SIGKILL)
        stderr, stop_s = signal_and_wait(process, signal_number)
    finally:
        kill_if_running(process)
    print(f"{signal.Signals(signal_number).name}, {'classify down' if stage_down else 'healthy'}: "
          f"exit {process.returncode} {stop_s:.2f} s after the signal")
    assert process.returncode == exit_code, stderr[-3000:]
    assert stop_s < STOP_BOUND_S, stderr[-3000:]
    assert "Traceback" not in stderr
    match = re.search(r"interrupted at frame (\d+) of 464; (\d+) results written", stderr)
    assert match, stderr[-3000:]
    lines = read_results(results)  # every line parses: no partial line
    frames = [line["frame"] for line in lines]
    assert 20 <= len(lines) < OFFICE_FRAMES and int(match.group(2)) == len(lines)
    assert frames == sorted(set(frames))
    assert orphans_of(process.pid) == []


def test_three_quick_ctrl_c_say_exactly_how_many_lines_the_file_holds(tmp_path):
    results = tmp_path / "impatient.jsonl"
    video = shared_file(MEDIA / "office-woman.mp4")
    process = subprocess.Popen(fakeblock("up", "--source", str(video), "--display", "none", "--results", str(results),
                                         "--no-status"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_results(results, 20, process)
        for _ in range(3):  # an impatient user: the display writes its last lines as it closes
            os.killpg(process.pid, signal.SIGINT)
            time.sleep(0.05)
        _stdout, stderr = process.communicate(timeout=60)
    finally:
        kill_if_running(process)
    assert process.returncode == 130, stderr[-3000:]
    match = re.search(r"interrupted at frame \d+ of 464; (\d+) results written", stderr)
    assert match, stderr[-3000:]
    assert int(match.group(1)) == len(read_results(results))
    assert orphans_of(process.pid) == []


def test_ctrl_c_while_the_stages_start_stops_cleanly(tmp_path):
    results = tmp_path / "early.jsonl"
    video = shared_file(MEDIA / "office-woman.mp4")
    process = subprocess.Popen(fakeblock("up", "--source", str(video), "--display", "none", "--results", str(results),
                                         "--no-status"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:  # as soon as classify is spawned, while it still imports
        wait_until(lambda: orphans_of(process.pid, "classify"), 60, "a classify process", process,
                   interval_s=0.01, describe=stderr_tail)
        stderr, stop_s = signal_and_wait(process, signal.SIGINT)
    finally:
        kill_if_running(process)
    print(f"SIGINT while starting: exit {process.returncode} {stop_s:.2f} s after the signal")
    assert process.returncode == 130, stderr[-3000:]
    assert stop_s < STOP_BOUND_S, stderr[-3000:]
    # The stages ignore the terminal's Ctrl-C from their first instruction: none dies of it.
    assert "Traceback" not in stderr and "while draining" not in stderr, stderr[-3000:]
    assert re.search(r"interrupted at frame \d+", stderr), stderr[-3000:]
    assert orphans_of(process.pid) == []


def test_a_killed_detect_worker_is_restarted_and_the_replay_finishes(tmp_path):
    results = tmp_path / "restart.jsonl"
    video = shared_file(MEDIA / "office-woman.mp4")
    process = subprocess.Popen(fakeblock("up", "--source", str(video), "--display", "none", "--results", str(results),
                                         "--no-status", "--detect-workers", "2", "--realtime"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_results(results, 30, process)
        victims = orphans_of(process.pid, "detect/")
        assert victims, "no detect process found"
        os.kill(victims[0], signal.SIGKILL)
        _stdout, stderr = process.communicate(timeout=200)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    assert "restarting" in stderr
    assert len(read_results(results)) > 100

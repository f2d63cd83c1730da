"""Live failover in one run: SIGSTOP the detect worker that holds a live stream, and the spare takes it.

``fakeblock up --source demo --realtime --detect-workers 2``: with tracking the one stream
is worker 0's share and worker 1 stands by as its spare (detect/stage.py:spare_sources).
A frozen holder stays connected but falls silent; the capture ends its lease after the
live lease timeout (2 s) and leases the stream to the spare with the next frame
(capture/leases.py).  The frames in between are dropped and counted, never written twice.
Every wait has a timeout and fails at once when the run exits.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest

from fakeblock.common.counters import DROPPED, FRAMES_IN, SKIPPED
from fakeblock.common.runtime import LEASE_TIMEOUT_S, READY_INTERVAL_S
from tests.helpers import (
    fakeblock,
    kill_if_running,
    line_count,
    orphans_of,
    read_results,
    wait_for_no_orphans,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
START_TIMEOUT_S = 90
MOVE_TIMEOUT_S = 30
LINES_BEFORE = 30
LINES_AFTER_A_MOVE = 30
EXIT_TIMEOUT_S = 60
LEASED = re.compile(r"frames go to (detect/\d+) on [^ ]* \(pid (\d+)\)")
SILENT = re.compile(r"was silent for (\d+\.\d) s; the next ready detect worker takes its frames")
# The capture notices the silence at its next frame or ready message: one frame time at
# 30 fps, given several times over on a loaded machine.
NOTICE_SLACK_S = 1.0


def test_a_frozen_live_lease_holder_s_stream_goes_to_the_spare(tmp_path):
    results, stats, log_path = tmp_path / "live.jsonl", tmp_path / "stats.json", tmp_path / "up.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(fakeblock("up", "--source", "demo", "--realtime", "--detect-workers", "2",
                                             "--display", "none", "--results", str(results), "--stats", str(stats),
                                             "--no-status"),
                                   stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    frozen = None
    try:
        def leases() -> list[tuple[str, int]]:
            return [(name, int(pid)) for name, pid in LEASED.findall(log_path.read_text())]

        def describe(_process) -> str:
            return log_path.read_text()[-3000:]

        first_name, first_pid = wait_until(leases, START_TIMEOUT_S, "a lease", process, describe=describe)[0]
        wait_until(lambda: line_count(results) >= LINES_BEFORE, START_TIMEOUT_S, "results", process,
                   describe=describe)
        os.kill(first_pid, signal.SIGSTOP)  # connected, but silent: its ready messages stop
        frozen = first_pid
        stopped_at = line_count(results)
        moved = wait_until(lambda: leases()[1:], MOVE_TIMEOUT_S, "the lease to move", process, describe=describe)
        spare_name = moved[0][0]
        wait_until(lambda: line_count(results) >= stopped_at + LINES_AFTER_A_MOVE, MOVE_TIMEOUT_S,
                   "results from the spare", process, describe=describe)
        os.kill(first_pid, signal.SIGCONT)
        frozen = None
        thawed_at = line_count(results)
        wait_until(lambda: line_count(results) >= thawed_at + LINES_AFTER_A_MOVE, MOVE_TIMEOUT_S,
                   "results after the holder thawed", process, describe=describe)
        process.send_signal(signal.SIGINT)
        assert process.wait(EXIT_TIMEOUT_S) == 130, describe(process)
    finally:
        if frozen is not None:
            os.kill(frozen, signal.SIGCONT)
        kill_if_running(process)
    text = log_path.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert spare_name != first_name and [name for name, _pid in leases()] == [first_name, spare_name], text[-3000:]
    silent_s = [float(value) for value in SILENT.findall(text)]
    assert len(silent_s) == 1 and LEASE_TIMEOUT_S <= silent_s[0] <= LEASE_TIMEOUT_S + NOTICE_SLACK_S, silent_s
    # The user's line: the run was interrupted; the results file holds whole lines, each frame once, in order.
    written = [int(count) for count in re.findall(r"interrupted at frame \d+; (\d+) results written", text)]
    assert results.read_bytes().endswith(b"\n")
    frames = [line["frame"] for line in read_results(results)]
    assert written == [len(frames)], text[-1000:]
    assert frames == sorted(set(frames)), "a frame written twice or out of order"
    # Both workers tracked the stream in turn; the frames in between are dropped and counted.
    counters = json.loads(stats.read_text())["stages"]
    assert counters[first_name][FRAMES_IN] > 0 and counters[spare_name][FRAMES_IN] > 0, counters
    dropped = counters["capture/0"].get(DROPPED, 0)
    hole = max(later - earlier - 1 for earlier, later in zip(frames, frames[1:], strict=False))
    missing = frames[-1] - frames[0] + 1 - len(frames)
    print(f"holder {first_name} silent {silent_s[0]} s; capture dropped {dropped}; largest hole {hole} frames; "
          f"{missing} frame numbers missing, display skipped {counters['display/0'].get(SKIPPED, 0)}; "
          f"frames_in {counters[first_name][FRAMES_IN]}/{counters[spare_name][FRAMES_IN]}")
    # At 30 fps the silence lasted at least the timeout less one ready interval: those frames are missing.
    assert hole >= (LEASE_TIMEOUT_S - READY_INTERVAL_S) * 30 * 0.5, hole
    assert dropped >= hole - 8, "frames the frozen holder never took were not counted as dropped"
    assert counters["display/0"].get(SKIPPED, 0) >= missing, "a missing frame number went uncounted"
    wait_for_no_orphans(process.pid)
    assert not orphans_of(process.pid)

"""Two detect supervisors under one name sharing one capture: each stream is leased to one of them.

This is `docker compose up --scale detect=2` (or a Deployment's replicas) on one machine:
two `fakeblock up --only detect` runs without a site file are both detect worker 0 of 1
and both connect to the one capture; queue and classify run in a third supervisor,
capture and display in a fourth. The capture leases its stream to one replica
(capture/leases.py), so a lossless replay's results are exactly a one-worker run's, and
a live stream moves to the other replica when its holder falls silent or dies, and stays
there when the first one comes back. Every wait has a timeout and fails early when a
supervisor exits; every process group a test starts is killed at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

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
from tests.sites import Site, log_of, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
START_TIMEOUT_S = 60
RUN_TIMEOUT_S = 400
# A lease moves after 2 s of silence; a loaded machine gets much more room than that.
MOVE_TIMEOUT_S = 30
LINES_AFTER_A_MOVE = 20
# The capture's log line naming each lease: "...: frames go to detect/0 on host (pid 123); ...".
LEASED = re.compile(r"frames go to detect/\d+ on [^ ]* \(pid (\d+)\)")


@pytest.fixture
def replicas(tmp_path):
    """A Site (private runtime folder: the runs meet only each other) with two detect replicas
    and a queue-and-classify run started, and the pid of each replica's detect worker."""
    site = Site(tmp_path)
    try:
        detects = [site.up(f"detect-{name}", "--only", "detect", "--stats", str(tmp_path / f"detect-{name}.json"))
                   for name in ("a", "b")]
        back = site.up("back", "--only", "queue,classify")
        workers = [wait_until(lambda run=run: orphans_of(run.pid, "detect"), START_TIMEOUT_S,
                              "a detect worker in each replica", [*detects, back], describe=log_of)[0]
                   for run in detects]
        yield site, detects, back, workers
    finally:
        site.close()


def leases_of(front: subprocess.Popen) -> list[int]:
    """The detect worker pids the capture leased its stream to, in order."""
    return [int(pid) for pid in LEASED.findall(front.log_path.read_text())]


def stop_all(*processes: subprocess.Popen) -> None:
    """Ctrl-C each supervisor; each exits as a user stopping it expects, leaving nothing behind."""
    for process in processes:
        assert stop(process) == 130, log_of(process)
    wait_for_no_orphans(*(process.pid for process in processes))
    for process in processes:
        assert "Traceback" not in process.log_path.read_text(), log_of(process)


def test_a_replay_read_by_two_replicas_gives_a_one_worker_run_s_results(replicas, tmp_path):
    site, detects, back, _workers = replicas
    video = shared_file(MEDIA / "office-woman.mp4")
    reference = tmp_path / "reference.jsonl"
    alone = subprocess.run(fakeblock("up", "--source", str(video), "--display", "none", "--results", str(reference),
                                     "--no-status"), capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                           env=site.environ, cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr[-3000:]
    results = tmp_path / "results.jsonl"
    front = site.up("front", "--only", "capture,display", "--source", str(video), "--display", "none",
                    "--results", str(results), "--stats", str(tmp_path / "front.json"))
    try:
        assert front.wait(RUN_TIMEOUT_S) == 0, log_of(front)
    finally:
        kill_if_running(front)
    lines = read_results(results)
    assert [line["frame"] for line in lines] == list(range(OFFICE_FRAMES))
    # One replica tracked the whole stream: the same boxes, track ids and scores on every line.
    assert lines == read_results(reference)
    assert len(leases_of(front)) == 1, log_of(front)
    capture = json.loads((tmp_path / "front.json").read_text())["stages"]["capture/0"]
    assert capture["peers"] == 2 and capture["leases"] == 1, "both replicas were ready; one got the lease"
    stop_all(*detects, back)
    frames_in = sorted(json.loads((tmp_path / f"detect-{name}.json").read_text())["stages"]["detect/0"]
                       .get("frames_in", 0) for name in ("a", "b"))
    assert frames_in == [0, OFFICE_FRAMES], "every frame went to one replica, none to the other"


def test_a_live_stream_moves_to_the_other_replica_when_its_holder_stops_and_stays_there(replicas, tmp_path):
    site, detects, back, workers = replicas
    results = tmp_path / "live.jsonl"
    front = site.up("front", "--only", "capture,display", "--source", "demo", "--realtime", "--display", "none",
                    "--results", str(results))
    everyone = [front, *detects, back]

    def wait_for_lines_beyond(count: int) -> None:
        wait_until(lambda: line_count(results) >= count + LINES_AFTER_A_MOVE, MOVE_TIMEOUT_S,
                   f"{LINES_AFTER_A_MOVE} more results", everyone, interval_s=0.2, describe=log_of)

    first = wait_until(lambda: leases_of(front), START_TIMEOUT_S, "a lease", everyone, describe=log_of)[0]
    assert first in workers, f"leased to {first}, not to a replica's worker {workers}"
    wait_for_lines_beyond(0)
    other = workers[1 - workers.index(first)]
    os.kill(first, signal.SIGSTOP)  # a frozen replica: connected, but silent
    try:
        stopped_at = line_count(results)
        wait_until(lambda: leases_of(front)[1:], MOVE_TIMEOUT_S, "the lease to move", everyone, describe=log_of)
        assert leases_of(front)[1] == other, log_of(front)
        wait_for_lines_beyond(stopped_at)
    finally:
        os.kill(first, signal.SIGCONT)
    # The first replica is back and ready again: the stream stays where it is (a move restarts tracks).
    back_at = line_count(results)
    wait_for_lines_beyond(back_at)
    assert leases_of(front) == [first, other], log_of(front)
    # The holder's whole replica dies, as a killed container does: the stream moves back.
    holder_replica = detects[workers.index(other)]
    os.killpg(holder_replica.pid, signal.SIGKILL)
    holder_replica.wait(START_TIMEOUT_S)
    survivors = [process for process in everyone if process is not holder_replica]
    killed_at = line_count(results)
    wait_until(lambda: leases_of(front)[2:], MOVE_TIMEOUT_S, "the lease to move back", survivors, describe=log_of)
    assert leases_of(front) == [first, other, first], log_of(front)
    wait_until(lambda: line_count(results) >= killed_at + LINES_AFTER_A_MOVE, MOVE_TIMEOUT_S,
               "results after the replica died", survivors, interval_s=0.2, describe=log_of)
    stop_all(front, *(process for process in detects if process is not holder_replica), back)
    assert "was silent for" in front.log_path.read_text() and "is gone" in front.log_path.read_text()
    assert len({line["frame"] for line in read_results(results)}) == line_count(results), "no frame written twice"

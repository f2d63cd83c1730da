"""Recovery in a live two-host run: detect and classify are killed and the results come back.

Two supervisors over loopback TCP play two machines (tests/sites.py), as in tests/test_deploy_pipeline.py:
127.0.0.1 runs capture (the live demo, looping forever) and display, 127.0.0.2 runs
detect, queue and classify.  The test SIGKILLs the detect worker, then the classify
worker; the worker host's supervisor restarts each (with back-off), and results must
resume within ``MAX_GAP_S``.  ``fakeblock status --json`` (through typer's CliRunner, so
it is quick enough to see a sub-second gap) must show the stage down and then up again.
A sampler thread records when the results file grows, so gaps are measured from arrival
times, and every measured gap is logged.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakeblock.control.cli.app import app
from tests.helpers import assert_running, orphans_of, wait_for_no_orphans, wait_until
from tests.sites import FRONT_HOST, WORKER_HOST, Site, free_port, log_of, stop

LOGGER = logging.getLogger(__name__)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
MAX_GAP_S = 5.0
SAMPLE_INTERVAL_S = 0.05
RESUMED_LINES = 11  # this many new results after a restart count as recovered
STATUS_TIMEOUT_S = 0.5
WAIT_TIMEOUT_S = 60.0


class ArrivalSampler:
    """A thread noting (monotonic time, line count) whenever the results file grows."""

    def __init__(self, path: Path):
        self.path = path
        self.arrivals: list[tuple[float, int]] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="arrival-sampler", daemon=True)

    def _count(self) -> int:
        try:
            return self.path.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def _run(self) -> None:
        last_count = 0
        while not self._stopped.wait(SAMPLE_INTERVAL_S):
            count = self._count()
            if count > last_count:
                self.arrivals.append((time.monotonic(), count))
                last_count = count

    def __enter__(self) -> ArrivalSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stopped.set()
        self._thread.join(5)

    def lines(self) -> int:
        return self.arrivals[-1][1] if self.arrivals else 0

    def wait_for_lines(self, count: int, processes) -> None:
        """Wait until ``count`` lines have arrived; fails early (with its log) when a supervisor exits."""
        wait_until(lambda: self.lines() >= count, WAIT_TIMEOUT_S, f"{count} results in {self.path}", processes,
                   interval_s=0.1, describe=log_of)

    def longest_gap_s(self, start_s: float, end_s: float) -> float:
        """The longest time without a new line from the last arrival before ``start_s`` to ``end_s``."""
        times = [arrival_s for arrival_s, _count in self.arrivals if arrival_s <= end_s]
        before = [arrival_s for arrival_s in times if arrival_s <= start_s]
        window = ([before[-1]] if before else []) + [arrival_s for arrival_s in times if arrival_s > start_s]
        return max((later - earlier for earlier, later in pairwise(window)), default=end_s - start_s)


def live_site_text(results: Path) -> str:
    """The live demo on FRONT_HOST, one detect and one classify worker on WORKER_HOST."""
    return "\n".join([
        f"[supervisor]\nport = {free_port()}\n",
        f'[stages.capture]\nhost = "{FRONT_HOST}"\nport = {free_port()}\nsource = "demo"\nrealtime = true\n',
        f'[stages.detect]\nhost = "{WORKER_HOST}"\nworkers = 1\n',
        f'[stages.queue]\nhost = "{WORKER_HOST}"\nports = [{free_port()}, {free_port()}]\n',
        f'[stages.classify]\nhost = "{WORKER_HOST}"\n',
        f'[stages.display]\nhost = "{FRONT_HOST}"\nports = [{free_port()}, {free_port()}]\noutputs = ["none"]\n'
        f'results = "{results}"\n',
    ])


def stage_status(site_file: Path, stage: str, environ: dict) -> dict | None:
    """``fakeblock status --config SITE --json``'s row for ``stage`` on the worker host (None: no answer)."""
    result = CliRunner().invoke(app, ["status", "--config", str(site_file), "--json",
                                      "--timeout", str(STATUS_TIMEOUT_S)], env=environ)
    document = json.loads(result.stdout)
    for host in document["hosts"]:
        for row in host.get("stages", []):
            if host["host"] == WORKER_HOST and row["stage"] == stage:
                return row
    return None


def wait_for_status(site_file: Path, stage: str, environ: dict, down: bool, timeout_s: float, processes) -> dict:
    """Ask until ``stage`` shows fewer alive workers than it has (``down``) or all of them alive.

    Asks again at once (a down state can be brief); fails early, with its log, when a
    supervisor in ``processes`` exits.
    """
    deadline_s = time.monotonic() + timeout_s
    while True:
        row = stage_status(site_file, stage, environ)
        if row is not None and (row["alive"] < row["workers"] if down else row["alive"] == row["workers"]):
            return row
        assert_running(processes, f"{stage} to show {'down' if down else 'up'}", describe=log_of)
        assert time.monotonic() < deadline_s, f"{stage} never showed {'down' if down else 'up'}: {row}"


def kill_and_measure(site: Site, site_file: Path, workers, sampler: ArrivalSampler, stage: str) -> float:
    """SIGKILL ``stage``'s worker processes; return the longest gap in results around it, in seconds."""
    pids = orphans_of(workers.pid, stage)
    assert pids, f"no {stage} process found under supervisor {workers.pid}"
    lines_before = sampler.lines()
    killed_s = time.monotonic()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    down = wait_for_status(site_file, stage, site.environ, down=True, timeout_s=MAX_GAP_S, processes=[workers])
    # "done" only in the moment before the supervisor notices the death; then "restarting".
    assert set(down["states"]) & {"restarting", "silent", "done"}, down
    up = wait_for_status(site_file, stage, site.environ, down=False, timeout_s=3 * MAX_GAP_S,
                         processes=[workers])
    assert up["alive"] == up["workers"] == len(pids)
    assert set(orphans_of(workers.pid, stage)).isdisjoint(pids), "the restarted worker is a new process"
    # Recovered means results keep coming after the restart, not one stray line. Waiting for a
    # line count (not a fixed time) keeps this independent of how busy the machine is; the gap
    # assertion below is what bounds the time.
    sampler.wait_for_lines(lines_before + RESUMED_LINES, [workers])
    resumed_lines = sampler.lines()
    gap_s = sampler.longest_gap_s(killed_s, time.monotonic())
    LOGGER.info("%s killed: longest gap in results %.2f s; %d lines since", stage, gap_s,
                   resumed_lines - lines_before)
    return gap_s


def test_killed_detect_and_classify_are_restarted_and_results_resume(site):
    results = site.tmp_path / "results.jsonl"
    site_file = site.tmp_path / "site.toml"
    site_file.write_text(live_site_text(results))
    workers = site.up("workers", "--config", str(site_file), "--only", "detect,queue,classify")
    front = site.up("front", "--config", str(site_file), "--only", "capture,display")
    with ArrivalSampler(results) as sampler:
        sampler.wait_for_lines(30, [front, workers])
        gaps_s = {stage: kill_and_measure(site, site_file, workers, sampler, stage) for stage in ("detect", "classify")}
    LOGGER.info("recovery gaps in seconds: %s", gaps_s)  # shown with --log-cli-level=INFO
    for stage, gap_s in gaps_s.items():
        assert gap_s < MAX_GAP_S, f"results stopped for {gap_s:.1f} s after {stage} was killed"
    assert stop(front) == 130, log_of(front)  # Ctrl-C: 128 + SIGINT
    assert stop(workers) == 130, log_of(workers)
    wait_for_no_orphans(front.pid, workers.pid)
    assert "Traceback" not in front.log_path.read_text() + workers.log_path.read_text()

"""``fakeblock up --metrics-port`` end to end: the families move, and a SIGKILLed detect shows in them.

The live demo (synthetic, looping, paced at 30 fps) runs with a metrics port and a token
file.  Two scrapes a second apart must show every stage's counters moving and the
display's latency histogram filling.  Then the detect worker (``fakeblock: detect/0`` in
``ps``) is SIGKILLed: ``/readyz`` must answer 503 naming it, its restarts counter must
reach 1, and once the new process heartbeats ``/readyz`` is 200 again and its frames move.
No stage process may hold the listening socket, and nothing is left once the run stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakeblock.control.metrics.http_server import METRICS_PATH, READY_PATH
from tests.helpers import fakeblock, http_get, kill_if_running, orphans_of, wait_for_no_orphans, wait_until
from tests.sites import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
TOKEN = "an-end-to-end-token-for-this-test-only"
START_TIMEOUT_S = 90.0
RESTART_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
STAGES = ("capture", "detect", "queue", "classify", "display")
LISTENING = "0A"  # TCP_LISTEN in /proc/net/tcp


class Pipeline:
    """A running ``fakeblock up`` with its log, metrics port and token."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        token_path = tmp_path / "token"
        token_path.write_text(TOKEN + "\n")
        token_path.chmod(0o600)
        self.log_path = tmp_path / "up.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            fakeblock("up", "--source", "demo", "--realtime", "--display", "none", "--no-status",
                      "--metrics-port", str(self.port), "--metrics-token-file", str(token_path)),
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def describe(self, _process) -> str:
        return self.log_path.read_text()[-3000:]

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, str]:
        """(status, body) of ``path``; (0, reason) while nothing listens."""
        return http_get(self.port, path, token or None)

    def samples(self) -> dict[tuple[str, str], float]:
        """(sample name, stage) -> value of every per-stage sample (the le-less ones of the histogram)."""
        status, text = self.get(METRICS_PATH)
        assert status == 200, text
        return {(sample.name, sample.labels["stage"]): sample.value
                for family in text_string_to_metric_families(text) for sample in family.samples
                if "stage" in sample.labels and "le" not in sample.labels and "state" not in sample.labels}

    def wait(self, condition, timeout_s: float, what: str, interval_s: float = 0.05):
        return wait_until(condition, timeout_s, what, self.process, interval_s=interval_s, describe=self.describe)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_TIMEOUT_S)

    def close(self) -> None:
        kill_if_running(self.process)
        self.log.close()


@pytest.fixture
def pipeline(tmp_path):
    running = Pipeline(tmp_path)
    yield running
    running.close()


def listening_inode(port: int) -> str:
    """The inode of the socket listening on 127.0.0.1:``port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == LISTENING:
            return fields[9]
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:["):-1])
    return found


def process_title(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def test_metrics_move_and_a_killed_detect_shows_as_restarted_and_not_ready(pipeline):
    pipeline.wait(lambda: pipeline.get(READY_PATH, token=None) == (200, "ok\n"), START_TIMEOUT_S, "/readyz 200")
    assert pipeline.get(METRICS_PATH, token=None)[0] == 401
    assert pipeline.get(METRICS_PATH, token="not-the-token-at-all")[0] == 401

    pipeline.wait(lambda: pipeline.samples().get(("fakeblock_results_written_total", "display"), 0) > 0,
                  START_TIMEOUT_S, "the first results", interval_s=0.2)
    first = pipeline.samples()
    time.sleep(1.5)
    second = pipeline.samples()
    for stage in ("capture", "detect", "queue", "classify"):
        # A stage's first heartbeat with frames may still be on its way at the first scrape.
        assert second[("fakeblock_frames_in_total", stage)] > first.get(("fakeblock_frames_in_total", stage), 0), stage
    for stage in STAGES:
        assert ("fakeblock_queue_depth", stage) in second and second[("fakeblock_worker_alive", stage)] == 1.0
        assert second[("fakeblock_restarts_total", stage)] == 0.0
    written = ("fakeblock_results_written_total", "display")
    count = ("fakeblock_result_latency_seconds_count", "display")
    assert second[written] > first[written]
    assert second[count] > first.get(count, 0)  # the histogram fills (its counters go with heartbeats)
    assert ("fakeblock_batch_size", "classify") in second and ("fakeblock_batch_size", "detect") not in second

    # Spawned stages start in fresh interpreters: none of them holds the listening socket.
    inode = listening_inode(pipeline.port)
    stage_pids = orphans_of(pipeline.process.pid)
    assert len(stage_pids) == len(STAGES)
    assert not [pid for pid in stage_pids if inode in socket_inodes(pid)]
    assert inode in socket_inodes(pipeline.process.pid)

    (detect_pid,) = orphans_of(pipeline.process.pid, "detect/0")
    assert process_title(detect_pid) == "fakeblock: detect/0"
    os.kill(detect_pid, signal.SIGKILL)
    status, body = pipeline.wait(lambda: (answer := pipeline.get(READY_PATH, token=None))[0] == 503 and answer,
                                 RESTART_TIMEOUT_S, "/readyz 503 after the kill", interval_s=0.02)
    assert body.startswith("not ready: detect/0 "), body
    pipeline.wait(lambda: pipeline.samples()[("fakeblock_restarts_total", "detect")] == 1.0, RESTART_TIMEOUT_S,
                  "detect's restarts counter at 1")
    pipeline.wait(lambda: pipeline.get(READY_PATH, token=None) == (200, "ok\n"), RESTART_TIMEOUT_S,
                  "/readyz 200 after the restart", interval_s=0.1)
    (new_pid,) = orphans_of(pipeline.process.pid, "detect/0")
    assert new_pid != detect_pid
    # The new process counts from 0, and from its first frame on.
    before = pipeline.samples().get(("fakeblock_frames_in_total", "detect"), 0.0)
    pipeline.wait(lambda: pipeline.samples().get(("fakeblock_frames_in_total", "detect"), 0.0) > before,
                  RESTART_TIMEOUT_S, "the restarted detect's frames to move")
    assert pipeline.samples()[("fakeblock_restarts_total", "detect")] == 1.0

    supervisor_pid = pipeline.process.pid
    assert pipeline.stop() == 128 + signal.SIGTERM  # a live run stopped by a signal
    wait_for_no_orphans(supervisor_pid)
    assert pipeline.get(READY_PATH, token=None)[0] == 0  # the port is closed with the supervisor

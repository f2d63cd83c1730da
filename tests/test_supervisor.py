"""The supervisor run in this process on a small host (the queue, no model to load): its
own counters reach `fakeblock status` and `--stats`, a worker host's drain ends once
nothing moves, and a stage that crashes at every start is given up on.  Also the restart
policy on its own.

The supervisor must run in the main thread (it installs signal handlers); a helper thread
plays the outside world and always ends the run with a SIGINT, so a failed check cannot
leave the run going.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest
import zmq

from fakeblock.common import wire
from fakeblock.common.counters import MALFORMED_HEARTBEATS, MALFORMED_REQUESTS
from fakeblock.common.endpoints import local_status_service
from fakeblock.common.runtime import STAGE_VARIABLE, SUPERVISOR_PID_VARIABLE
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.stages import insert_stage
from fakeblock.control.status.client import Target, ask
from fakeblock.control.supervisor.preflight import run
from fakeblock.control.supervisor.restarts import MAX_RESTARTS, RESTART_WINDOW_S, RestartPolicy
from fakeblock.control.supervisor.run_config import Deployment, build_config
from tests.crashing_stage import CRASHING
from tests.helpers import fakeblock, orphans_of

WAIT_TIMEOUT_S = 30.0
# Six crashes at start, the five back-offs between them (15.5 s) and six start-ups.
GIVE_UP_BOUND_S = 45.0
# The drain's quiet time (1.5 s) plus the stop, with room for a loaded machine.
STOP_BOUND_S = 6.0


@pytest.fixture
def private_runtime(monkeypatch):
    """A short private XDG_RUNTIME_DIR (ipc paths are limited; `fakeblock status` sees only this run).

    The supervisor names itself to its children in this process's environment: both
    variables are restored afterwards, even when they were not set before.
    """
    folder = tempfile.mkdtemp(prefix="fb-sv-")
    monkeypatch.setenv("XDG_RUNTIME_DIR", folder)
    for variable in (SUPERVISOR_PID_VARIABLE, STAGE_VARIABLE):
        monkeypatch.setenv(variable, "")  # recorded, so the teardown removes what the run sets
        monkeypatch.delenv(variable)
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def queue_only_config(tmp_path: Path, stages: tuple[str, ...] = ("queue",)):
    config = build_config(Deployment(), {}, stats=str(tmp_path / "stats.json"), show_status=False)
    return replace(config, stages=stages)


def wait_for_report(target: Target, ready, timeout_s: float = WAIT_TIMEOUT_S) -> wire.StatusReport:
    """Ask until the supervisor answers with a report for which ``ready`` holds."""
    deadline_s = time.monotonic() + timeout_s
    while time.monotonic() < deadline_s:
        report = ask([target], timeout_s=1.0)[0].report
        if report is not None and ready(report):
            return report
        time.sleep(0.1)
    raise AssertionError(f"no fitting status report from {target.endpoint} within {timeout_s} s")


def send_malformed(context: zmq.Context, config) -> None:
    """Two heartbeats that do not decode on the status link, one request that is none on the status service."""
    heartbeat = context.socket(zmq.PUSH)
    heartbeat.setsockopt(zmq.LINGER, 1000)
    heartbeat.connect(config.endpoints.status)
    bad_counters = msgpack.packb({"v": wire.SCHEMA_VERSION, "kind": "status", "stage": "queue", "worker": 0,
                                  "pid": 1, "counters": {"frames_in": "many"}})
    for frames in ([b"\x00 not msgpack"], [bad_counters]):
        heartbeat.send_multipart(frames)
    heartbeat.close()
    request = context.socket(zmq.DEALER)
    request.setsockopt(zmq.LINGER, 1000)
    request.connect(local_status_service(config.endpoints))
    request.send_multipart([b"", b"\x00junk"])
    request.close()


def status_cli(runtime_directory: Path, *arguments: str) -> str:
    completed = subprocess.run(fakeblock("status", *arguments), capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime_directory), COLUMNS="200"))
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.mark.timeout(180)
def test_the_supervisors_malformed_counts_reach_status_and_stats_and_a_worker_host_stops_when_quiet(
        tmp_path, private_runtime):
    config = queue_only_config(tmp_path)
    target = Target("here", local_status_service(config.endpoints), SecurityConfig())
    seen: dict = {}

    def outside_world() -> None:
        context = zmq.Context()
        try:
            wait_for_report(target, lambda report: any(worker.alive for worker in report.workers))
            send_malformed(context, config)
            # The request and the heartbeats travel different sockets: wait for both counts.
            report = wait_for_report(target, lambda report: report.counters.get(MALFORMED_HEARTBEATS) == 2
                                     and report.counters.get(MALFORMED_REQUESTS) == 1)
            seen["report"] = report.counters
            seen["json"] = json.loads(status_cli(private_runtime, "--json"))
            seen["table"] = status_cli(private_runtime)
        except BaseException as error:  # reported by the test, after the run has been stopped
            seen["error"] = repr(error)
        finally:
            context.term()
            seen["signalled_s"] = time.monotonic()
            os.kill(os.getpid(), signal.SIGINT)

    helper = threading.Thread(target=outside_world, name="outside-world", daemon=True)
    helper.start()
    code = run(config, say=lambda line: None)
    stopped_s = time.monotonic()
    helper.join(10)
    assert not helper.is_alive() and "error" not in seen, seen.get("error")
    print(f"worker host stopped {stopped_s - seen['signalled_s']:.2f} s after SIGINT")

    assert code == 130
    assert stopped_s - seen["signalled_s"] < STOP_BOUND_S
    assert seen["report"] == {MALFORMED_HEARTBEATS: 2, MALFORMED_REQUESTS: 1}
    host = seen["json"]["hosts"][0]
    assert host["supervisor_counters"] == {MALFORMED_HEARTBEATS: 2, MALFORMED_REQUESTS: 1}
    # The host's row carries its supervisor's own drops: 2 heartbeats and 1 request.
    host_rows = [line for line in seen["table"].splitlines() if line.split()[:1] == [socket.gethostname()]]
    assert len(host_rows) == 1 and " 3 " in host_rows[0], seen["table"]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["supervisor"] == {MALFORMED_HEARTBEATS: 2, MALFORMED_REQUESTS: 1}
    assert not [pid for pid in orphans_of(os.getpid()) if b"resource_tracker" not in command_line(pid)]


# Slow: it waits out the real back-off of every restart (about 19 s); crash_at_start below
# checks the same schedule in the quick set.
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_stage_that_crashes_at_every_start_is_given_up_on_and_the_run_exits_1(tmp_path, private_runtime, caplog):
    stages = insert_stage(CRASHING, after="queue")
    config = queue_only_config(tmp_path, ("queue", "crashing"))

    started_s = time.monotonic()
    code = run(config, say=lambda line: None, stages=stages)
    elapsed_s = time.monotonic() - started_s
    print(f"gave up after {elapsed_s:.1f} s")

    assert code == 1
    assert elapsed_s < GIVE_UP_BOUND_S
    given_up = [record.getMessage() for record in caplog.records if "giving up" in record.getMessage()]
    assert given_up == [f"giving up on crashing: it crashed {MAX_RESTARTS + 1} times within "
                        f"{RESTART_WINDOW_S:.0f} s (last exit code 1); stopping the pipeline"]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["restarts"] == {"queue/0": 0, "crashing/0": MAX_RESTARTS}
    assert stats["exit_codes"]["crashing/0"] == 1
    assert not [pid for pid in orphans_of(os.getpid()) if b"resource_tracker" not in command_line(pid)]


def crash_at_start(policy: RestartPolicy, start_s: float = 1.0) -> list[float | None]:
    """The delays the policy gives a worker that crashes as soon as each restart is done."""
    crashes: list[float] = []
    delays: list[float | None] = []
    now_s = 0.0
    while not delays or delays[-1] is not None:
        now_s += start_s
        crashes = [*policy.forget_old(crashes, now_s), now_s]
        delays.append(policy.restart_delay_s(crashes, now_s))
        now_s += delays[-1] or 0.0
    return delays


def test_a_stage_crashing_at_start_gets_five_growing_back_offs_then_is_given_up_on():
    assert crash_at_start(RestartPolicy()) == [0.5, 1.0, 2.0, 4.0, 8.0, None]


def test_a_stage_that_crashes_once_an_hour_is_always_restarted_after_the_shortest_wait():
    policy = RestartPolicy()
    crashes: list[float] = []
    for hour in range(1, 25):
        now_s = hour * 3600.0
        crashes = [*policy.forget_old(crashes, now_s), now_s]
        assert policy.restart_delay_s(crashes, now_s) == 0.5
    assert len(crashes) == 1, "old crashes are forgotten"


def test_only_crashes_within_the_window_count():
    policy = RestartPolicy()
    # Five crashes long ago and one now: restarted; six within a minute: given up on.
    assert policy.restart_delay_s([0.0, 1.0, 2.0, 3.0, 4.0, 100.0], 100.0) == 0.5
    assert policy.restart_delay_s([50.0, 60.0, 70.0, 80.0, 90.0, 100.0], 100.0) is None
    assert policy.restart_delay_s([40.0, 60.0, 70.0, 80.0, 90.0, 100.0], 100.0) == 8.0


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""

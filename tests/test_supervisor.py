"""The supervisor run in this process on a small host (the queue alone, no model to load):
its own counters reach `fakeblock status` and `--stats`, and a worker host's drain ends
once nothing moves.

The supervisor must run in the main thread (it installs signal handlers); a helper thread
plays the outside world and always ends the run with a SIGINT, so a failed check cannot
leave the run going.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
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
from fakeblock.common.control.preflight import run
from fakeblock.common.control.run_config import Deployment, build_config
from fakeblock.common.control.status_client import Target, ask
from fakeblock.common.counters import MALFORMED_HEARTBEATS, MALFORMED_REQUESTS
from fakeblock.common.endpoints import local_status_service
from fakeblock.common.runtime import STAGE_VARIABLE, SUPERVISOR_PID_VARIABLE
from fakeblock.common.security import SecurityConfig
from tests.helpers import fakeblock, orphans_of

WAIT_TIMEOUT_S = 30.0
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


def queue_only_config(tmp_path: Path):
    config = build_config(Deployment(), {}, stats=str(tmp_path / "stats.json"), show_status=False)
    return replace(config, stages=("queue",))


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
            report = wait_for_report(target, lambda report: report.counters.get(MALFORMED_HEARTBEATS) == 2)
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
    supervisor_rows = [line for line in seen["table"].splitlines() if "supervisor" in line]
    assert len(supervisor_rows) == 1 and " 3 " in supervisor_rows[0], seen["table"]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["supervisor"] == {MALFORMED_HEARTBEATS: 2, MALFORMED_REQUESTS: 1}
    assert not [pid for pid in orphans_of(os.getpid()) if b"resource_tracker" not in command_line(pid)]


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""

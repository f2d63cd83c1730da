"""A supervisor killed outright (SIGKILL, a power cut) leaves its note and its run directory of
sockets behind; ``fakeblock status`` and the next supervisor to start remove them, and
nothing that is not such a leftover."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from fakeblock.control.status import discovery
from tests.helpers import fakeblock

WAIT_TIMEOUT_S = 60.0
DEAD_PID = 2**22 + 4321  # above the kernel's pid limit: never a live process


def leftover(registry: Path, run_directory: Path, pid: int = DEAD_PID, sockets: tuple[str, ...] = ("control",)):
    """The note and run directory a killed supervisor leaves: sockets in a private folder."""
    run_directory.mkdir(mode=0o700)
    for name in sockets:
        with socket.socket(socket.AF_UNIX) as bound:
            bound.bind(str(run_directory / name))
    discovery.register(discovery.LocalPipeline(pid, "here", f"ipc://{run_directory / 'status-service'}"), registry)


def test_a_dead_supervisors_note_and_sockets_are_removed_and_nothing_else(tmp_path):
    registry = tmp_path / "registry"
    stale = tmp_path / "fakeblock-stale1"
    leftover(registry, stale, sockets=("control", "status", "status-service"))
    holds_a_file = tmp_path / "fakeblock-withfile"
    leftover(registry, holds_a_file, pid=DEAD_PID + 1)
    (holds_a_file / "notes.txt").write_text("not ours to remove")
    other_name = tmp_path / "somebody-else"
    leftover(registry, other_name, pid=DEAD_PID + 2)
    discovery.remove_stale_runs(registry)
    assert not stale.exists()
    assert (holds_a_file / "notes.txt").exists() and other_name.exists()
    assert not list(registry.glob("*.json")), "every dead supervisor's note is removed"


def test_a_live_supervisors_run_directory_is_kept(tmp_path):
    registry = tmp_path / "registry"
    alive = tmp_path / "fakeblock-alive1"
    leftover(registry, alive, pid=os.getpid())
    discovery.remove_stale_runs(registry)
    assert alive.exists() and discovery.local_pipelines(registry)


def wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline_s = time.monotonic() + WAIT_TIMEOUT_S
    while not condition():
        assert process.poll() is None, f"fakeblock up ended (exit {process.returncode}) before {what}"
        assert time.monotonic() < deadline_s, f"no {what} within {WAIT_TIMEOUT_S} s"
        time.sleep(0.1)


def start_live(runtime: Path) -> subprocess.Popen:
    return subprocess.Popen(fakeblock("up", "--source", "demo", "--realtime", "--display", "none", "--results",
                                      os.devnull, "--no-status"),
                            env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow  # starts `fakeblock up` twice, the whole pipeline each time
@pytest.mark.timeout(240)
def test_the_next_start_removes_what_a_killed_supervisor_left():
    runtime = Path(tempfile.mkdtemp(prefix="fb-stale-"))  # short: ipc paths are limited
    registry = runtime / discovery.REGISTRY_FOLDER_NAME
    try:
        first = start_live(runtime)
        try:
            wait_for(lambda: (registry / f"{first.pid}.json").exists(), first, "note of the first run")
            run_directories = [path for path in runtime.glob("fakeblock-*") if path.is_dir()]
            assert len(run_directories) == 1 and any(run_directories[0].iterdir())
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(30)
        assert run_directories[0].exists(), "a SIGKILL leaves the run directory"
        second = start_live(runtime)
        try:
            wait_for(lambda: (registry / f"{second.pid}.json").exists(), second, "note of the second run")
            assert not run_directories[0].exists() and not (registry / f"{first.pid}.json").exists()
            assert len([path for path in runtime.glob("fakeblock-*") if path.is_dir()]) == 1  # its own
        finally:
            os.killpg(second.pid, signal.SIGINT)
            assert second.wait(30) == 130
    finally:
        subprocess.run(["rm", "-rf", str(runtime)], check=False)

"""Shared test helpers: where the shared data lives, skipping cleanly without it, running the CLI,
and the supervisors of a two-host site on loopback (the ``site`` fixture in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MEDIA = SHARED / "media"
FER_CSV = SHARED / "data" / "fer2013" / "fer2013.csv.gz"
# Two loopback addresses play two machines in the multi-host tests.
FRONT_HOST, WORKER_HOST = "127.0.0.1", "127.0.0.2"


def shared_file(path: Path) -> Path:
    """Return ``path`` or skip the test with the reason it is missing."""
    if not path.exists():
        pytest.skip(f"{path} is not available (needs ../shared beside the repository)")
    return path


def fakeblock(*arguments: str) -> list[str]:
    """The command line that runs ``fakeblock`` with this interpreter."""
    return [sys.executable, "-m", "fakeblock", *arguments]


def read_results(path: Path) -> list[dict]:
    """Every line of a results file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def orphans_of(supervisor_pid: int, stage: str = "") -> list[int]:
    """Processes still running that a given supervisor started (they carry its pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        variables = environment.split(b"\0")
        if f"FAKEBLOCK_SUPERVISOR_PID={supervisor_pid}".encode() in variables and (
                not stage or any(v.startswith(f"FAKEBLOCK_STAGE={stage}".encode()) for v in variables)):
            found.append(int(entry.name))
    return found


def kill_started(processes, runtime_directory) -> None:
    """End every process a test started (its whole group), close their logs, remove their folder."""
    import os
    import shutil
    import signal

    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        process.log.close()
    shutil.rmtree(runtime_directory, ignore_errors=True)


class Site:
    """The supervisors of one test, a private registry folder for `fakeblock status`, and cleanup."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        # A short private runtime folder: ipc paths are limited to about 100 bytes, and
        # `fakeblock status` must see this test's pipelines only.
        self.runtime_directory = tempfile.mkdtemp(prefix="fb-test-")
        self.environ = dict(os.environ, XDG_RUNTIME_DIR=self.runtime_directory)
        self.processes: list[subprocess.Popen] = []

    def up(self, name: str, *arguments: str) -> subprocess.Popen:
        """Start `fakeblock up` in a process group of its own, logging to a file."""
        log = open(self.tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(fakeblock("up", "--no-status", *arguments), stdout=log, stderr=subprocess.STDOUT,
                                   env=self.environ, start_new_session=True, cwd=self.tmp_path)
        process.log_path, process.log = self.tmp_path / f"{name}.log", log
        self.processes.append(process)
        return process

    def status(self, *arguments: str) -> tuple[int, dict]:
        """`fakeblock status --json` with this test's registry folder."""
        completed = subprocess.run(fakeblock("status", "--json", *arguments), capture_output=True, text=True,
                                   env=self.environ, timeout=60, cwd=self.tmp_path)
        return completed.returncode, json.loads(completed.stdout)

    def close(self) -> None:
        kill_started(self.processes, self.runtime_directory)

"""Shared test helpers: where the shared data lives, skipping cleanly without it, running the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MEDIA = SHARED / "media"
FER_CSV = SHARED / "data" / "fer2013" / "fer2013.csv.gz"


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

"""Two loopback addresses playing two machines, each under its own `fakeblock up` supervisor.

127.0.0.1 plays the front host, 127.0.0.2 the worker host (tests/test_deploy_pipeline.py,
tests/test_recovery.py); the ``site`` fixture in tests/conftest.py gives a test a
:class:`Site` and skips where 127.0.0.2 is not a loopback address.  Every process group a
test starts is killed at the end if it is still there.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import fakeblock, kill_started

FRONT_HOST, WORKER_HOST = "127.0.0.1", "127.0.0.2"
STOP_TIMEOUT_S = 60
STATUS_COMMAND_TIMEOUT_S = 60


def worker_host_is_loopback() -> bool:
    """Whether this machine answers on WORKER_HOST (Linux routes all of 127/8 to loopback; others may not)."""
    try:
        with socket.socket() as probe:
            probe.bind((WORKER_HOST, 0))
    except OSError:
        return False
    return True


# Ports free_port handed out in this test session: the kernel may offer a port it just
# gave, once its probe socket is closed, and one site file must not name a port twice.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free on both loopback addresses right now, never one this session already got."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((FRONT_HOST, 0))
            port = probe.getsockname()[1]
        if port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((WORKER_HOST, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise AssertionError("no free port")


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
                                   env=self.environ, timeout=STATUS_COMMAND_TIMEOUT_S, cwd=self.tmp_path)
        return completed.returncode, json.loads(completed.stdout)

    def close(self) -> None:
        kill_started(self.processes, self.runtime_directory)


def log_of(process: subprocess.Popen) -> str:
    """The end of a supervisor's log."""
    return process.log_path.read_text()[-4000:]


def stop(process: subprocess.Popen) -> int:
    """Ctrl-C a supervisor, as a user would, and wait for it."""
    process.send_signal(signal.SIGINT)
    return process.wait(STOP_TIMEOUT_S)

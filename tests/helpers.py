"""Shared test helpers: where the shared data lives, skipping cleanly without it, running the CLI,
waiting with deadlines, and seeded hostile input."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fakeblock.common import wire
from tests.harness import exit_code, is_running, process_name

FUZZ_SEED_VARIABLE = "FAKEBLOCK_FUZZ_SEED"
WAIT_INTERVAL_S = 0.05
ORPHAN_EXIT_TIMEOUT_S = 5.0
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MEDIA = SHARED / "media"
OFFICE_FRAMES = 464  # frames of MEDIA / "office-woman.mp4"
FER_CSV = SHARED / "data" / "fer2013" / "fer2013.csv.gz"
# A log line of a stage (``12:00:01 INFO capture: ...``, ``detect/1: ...`` when it has several workers)
# or of the supervisor about one (``... supervisor: display exited with code 2``).
STAGE_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d [A-Z]+ (?:\S+: )?(capture|detect|queue|classify|display)(/\d+)?[: ]",
                            re.MULTILINE)
# Two loopback addresses play two machines in the multi-host tests.
FRONT_HOST, WORKER_HOST = "127.0.0.1", "127.0.0.2"


def shared_file(path: Path) -> Path:
    """Return ``path`` or skip the test with the reason it is missing."""
    if not path.exists():
        pytest.skip(f"{path} is not available (needs ../shared beside the repository)")
    return path


def http_get(port: int, path: str, token: str | None = None, timeout_s: float = 5.0) -> tuple[int, str]:
    """(status, body) of ``GET path`` on the loopback ``port``, with a bearer ``token`` when given;
    (0, reason) while nothing answers there."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


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


def kill_if_running(process) -> None:
    """End a run a failed test left behind: its whole session (``start_new_session=True``)."""
    import os
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)


def kill_started(processes, runtime_directory) -> None:
    """End every process a test started (its whole group), close their logs, remove their folder."""
    import shutil

    for process in processes:
        kill_if_running(process)
        process.log.close()
    shutil.rmtree(runtime_directory, ignore_errors=True)


# ---- waiting with deadlines -------------------------------------------------------------

def as_processes(process) -> list:
    """``process`` as a list: None is none, a list or tuple stays as it is."""
    if process is None:
        return []
    return list(process) if isinstance(process, (list, tuple)) else [process]


def assert_running(process, what: str, describe: Callable[[object], str] | None = None) -> None:
    """Fail when any of ``process`` (one, a list, or None) has exited, naming ``what`` was awaited.

    ``describe(process)`` adds what explains the exit (the tail of its log, say).
    """
    for each in as_processes(process):
        if not is_running(each):
            detail = f": {describe(each)}" if describe else ""
            raise AssertionError(f"{process_name(each)} exited with code {exit_code(each)} "
                                 f"while waiting for {what}{detail}")


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, process=None,
               interval_s: float = WAIT_INTERVAL_S, describe: Callable[[object], str] | None = None):
    """Poll ``condition()`` until it is truthy and return its value.

    Fails naming ``what`` after ``timeout_s``, or as soon as a ``process`` (a
    ``multiprocessing.Process`` or ``subprocess.Popen``, or a list of them) that should
    bring it about has exited; ``describe(process)`` adds to that message.
    """
    deadline_s = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert_running(process, what, describe)
        if time.monotonic() > deadline_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def line_count(path: Path) -> int:
    """How many lines ``path`` holds (0 while it does not exist)."""
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


def wait_for_no_orphans(*supervisor_pids: int, timeout_s: float = ORPHAN_EXIT_TIMEOUT_S) -> None:
    """Wait until no process started by these supervisors is left; fail naming the ones that are."""
    def left() -> list[int]:
        return [pid for supervisor_pid in supervisor_pids for pid in orphans_of(supervisor_pid)]

    try:
        wait_until(lambda: not left(), timeout_s, f"the stages of supervisor(s) {list(supervisor_pids)} to exit")
    except AssertionError as error:
        raise AssertionError(f"{error}; still running: {left()}") from None


# ---- seeded hostile input -------------------------------------------------------------------

def fuzz_seed(default_seed: int) -> int:
    """The seed of a test's hostile input: ``FAKEBLOCK_FUZZ_SEED`` when set, else ``default_seed``."""
    return int(os.environ.get(FUZZ_SEED_VARIABLE, default_seed))


def fuzz_generator(default_seed: int) -> tuple[np.random.Generator, int]:
    """A generator seeded with :func:`fuzz_seed` and the seed itself (for failure messages)."""
    seed = fuzz_seed(default_seed)
    return np.random.default_rng(seed), seed


def reproduce_with(seed: int) -> str:
    """What a failure message says so the run can be repeated exactly."""
    return f"{FUZZ_SEED_VARIABLE}={seed}"


@contextlib.contextmanager
def seed_on_failure(seed: int):
    """Add the seed to any assertion that fails inside, so the hostile input can be made again."""
    try:
        yield
    except AssertionError as error:
        raise AssertionError(f"{error} ({reproduce_with(seed)})") from error


def decode_hostile(frames: list, seed: int, index: int) -> bool:
    """``wire.decode(frames)``: True when decoded, False when refused with ``ValueError``.

    Any other exception (one that would crash a stage) fails the test naming the seed
    and the message's index, so the same input can be made again.
    """
    try:
        wire.decode(frames)
        return True
    except ValueError:
        return False
    except Exception as error:  # what the fuzz tests exist to catch
        raise AssertionError(f"message {index} ({reproduce_with(seed)}) raised {type(error).__name__}: "
                             f"{error}; frames {frames!r:.500}") from error

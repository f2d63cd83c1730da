"""Shared pytest fixtures: ZeroMQ contexts and sockets that cannot hang, a fake supervisor,
spawned stage processes that are always ended, the display stage harness, the two-host
site and the synthetic training data.

The machinery is in ``tests/harness.py``, ``tests/sites.py`` and ``tests/training_data.py``;
these fixtures give each test its own and clean it up whatever the test did.  Fixtures
used by several test modules live here, so no test module imports another's fixtures.
"""

import logging
import os
import shutil

import pytest
import zmq

from fakeblock.common import wire
from fakeblock.common.endpoints import ipc_endpoints, make_run_directory
from fakeblock.common.preprocess import EMOTIONS
from tests.harness import (
    PROCESS_EXIT_TIMEOUT_S,
    FakeSupervisor,
    StageProcesses,
    TrackedContext,
    make_pair,
    pair_endpoint,
)
from tests.helpers import FUZZ_SEED_VARIABLE, fuzz_seed
from tests.selection import deselects_every_train_test, marked_train_as_a_whole
from tests.sites import WORKER_HOST, Site, worker_host_is_loopback
from tests.training_data import (
    labelled_rows,
    train,
    write_ferplus,
    write_image_tree,
    write_kaggle_csv,
)

DISPLAY_SEND_HWM = 10000
STATUS_TIMEOUT_S = 10.0


def pytest_report_header(config) -> str | None:
    """Say when every fuzz test runs with a seed from the environment."""
    if FUZZ_SEED_VARIABLE in os.environ:
        return f"fuzz tests seeded with {FUZZ_SEED_VARIABLE}={fuzz_seed(0)}"
    return None


# ---- leaving the training modules unimported when -m leaves out their tests (tests/selection.py)

_left_uncollected: list[str] = []  # their names, for the line under the header


def pytest_ignore_collect(collection_path, config) -> bool | None:
    """Skip importing a module marked ``train`` as a whole when -m would deselect all its tests."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if not deselects_every_train_test(config.getoption("markexpr") or ""):
        return None
    if not marked_train_as_a_whole(collection_path.read_text(encoding="utf-8")):
        return None
    _left_uncollected.append(collection_path.name)
    return True


def pytest_report_collectionfinish(config, start_path, items) -> str | None:
    """Name the modules left unimported, so that the count of deselected tests does not hide them."""
    if not _left_uncollected:
        return None
    return f"not collected (marked train, and -m leaves train out): {', '.join(sorted(_left_uncollected))}"


# ---- sockets and the supervisor's links ----------------------------------------------------

@pytest.fixture
def run_directory():
    """A short private folder for ``ipc://`` sockets (their paths are limited to ~100 bytes), removed after."""
    directory = make_run_directory()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def stage_endpoints(run_directory):
    """Every link of a pipeline as ``ipc://`` endpoints in :func:`run_directory`."""
    return ipc_endpoints(run_directory)


@pytest.fixture
def zmq_context():
    """A :class:`~tests.harness.TrackedContext`: its sockets are closed and the context ends at teardown.

    A socket the test made from ``zmq_context.context`` and left open fails the test at
    teardown, by name, instead of hanging it in ``context.term()``.
    """
    context = TrackedContext()
    yield context
    context.close()


@pytest.fixture
def socket_pair(zmq_context, run_directory):
    """Make a sender and a receiver on a fresh endpoint: ``socket_pair("push_pull" | "pub_sub", "inproc" | "ipc")``."""
    def make(pattern: str = "push_pull", transport: str = "inproc"):
        return make_pair(zmq_context, pattern, pair_endpoint(transport, run_directory))

    return make


@pytest.fixture
def fake_supervisor(zmq_context, stage_endpoints):
    """The supervisor's control (PUB) and status (PULL) links bound on :func:`stage_endpoints`."""
    return FakeSupervisor(zmq_context, stage_endpoints)


@pytest.fixture
def stage_processes():
    """Spawn stage processes with ``stage_processes.start(target, args, name)``; any left are ended after."""
    processes = StageProcesses()
    yield processes
    processes.end_all()


# ---- the display stage harness (tests/test_display.py, tests/test_web.py) ---------------------

class DisplayHarness:
    """The test plays capture, classify and the supervisor around one display stage child.

    PUSH sockets connect to ``results`` (classify) and ``display_frames`` (capture); the
    supervisor's links are a :class:`~tests.harness.FakeSupervisor`.  Every send and
    receive has a timeout; the fixtures it is built on end the child and close the sockets.
    """

    def __init__(self, endpoints, context: TrackedContext, supervisor: FakeSupervisor, processes: StageProcesses):
        self.endpoints, self.supervisor, self._processes = endpoints, supervisor, processes
        self.results = context.socket(zmq.PUSH, connect=endpoints.results, send_hwm=DISPLAY_SEND_HWM)
        self.frames = context.socket(zmq.PUSH, connect=endpoints.display_frames, send_hwm=DISPLAY_SEND_HWM)
        self.announced: set[str] = set()
        self.process = None

    def start(self, config) -> None:
        """Spawn the display stage the way the supervisor does (exit code from ``child_main``)."""
        from fakeblock.control.supervisor.workers import child_main

        self.process = self._processes.start(child_main, ("display", config, self.endpoints, 0, logging.INFO),
                                             name="test-display")

    def send(self, socket, message) -> None:
        """Encode and send one message (raises ``zmq.Again`` after the send timeout).

        Like a capture, the harness announces each stream on the frames link before the
        first message that names it (the display writes only announced streams);
        :meth:`send_raw` sends without that.
        """
        info = getattr(message, "info", None)
        stream = info.stream if info is not None else getattr(message, "stream", None)
        if stream is not None and stream not in self.announced and not isinstance(message, wire.StreamStart):
            self.announced.add(stream)
            self.frames.send_multipart(wire.encode(wire.StreamStart(stream)))
        socket.send_multipart(wire.encode(message))

    def send_raw(self, socket, message) -> None:
        """Encode and send one message as it is, announcing nothing."""
        socket.send_multipart(wire.encode(message))

    def wait_exit(self, timeout_s: float = PROCESS_EXIT_TIMEOUT_S) -> int:
        """The child's exit code; fails the test when it is still running after ``timeout_s``."""
        self.process.join(timeout_s)
        assert not self.process.is_alive(), f"the display stage did not exit within {timeout_s} s"
        return self.process.exitcode

    def stop(self, timeout_s: float = PROCESS_EXIT_TIMEOUT_S) -> int:
        """Order a stop (repeated until it exits) and return the exit code."""
        return self.supervisor.order_until_exit(self.process, "stop", timeout_s=timeout_s)

    def read_status(self, until=lambda counters: True, timeout_s: float = STATUS_TIMEOUT_S) -> dict:
        """Read display heartbeats until ``until(counters)`` holds; the latest display counters."""
        return self.supervisor.read_status("display", until, timeout_s, process=self.process)


@pytest.fixture
def display_harness(stage_endpoints, zmq_context, fake_supervisor, stage_processes):
    """A :class:`DisplayHarness` on ``ipc://`` endpoints in a short private folder."""
    return DisplayHarness(stage_endpoints, zmq_context, fake_supervisor, stage_processes)


# ---- two loopback hosts (tests/test_deploy_pipeline.py, tests/test_recovery.py) ---------------

@pytest.fixture
def site(tmp_path):
    """A :class:`~tests.sites.Site`; every supervisor it started is killed after the test.

    Skips where 127.0.0.2 is not a loopback address (it is on Linux).
    """
    if not worker_host_is_loopback():
        pytest.skip(f"{WORKER_HOST} is not a loopback address here")
    made = Site(tmp_path)
    yield made
    made.close()


# ---- synthetic training data (tests/test_train.py, tests/test_distill.py, tests/test_ensemble.py) -----

@pytest.fixture(scope="module")
def module_env(tmp_path_factory):
    """A cache folder for module-scoped fixtures (monkeypatch itself is per test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAKEBLOCK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield patch


@pytest.fixture
def cache_in_tmp(monkeypatch, tmp_path):
    """The test's own model cache folder (the training modules use it on every test)."""
    monkeypatch.setenv("FAKEBLOCK_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict:
    """Each layout: (data path, extra train/eval options, number of held-out faces)."""
    root = tmp_path_factory.mktemp("layouts")
    rows = labelled_rows()
    held_out = sum(1 for _, usage in rows if usage != "Training")
    (root / "ferplus").mkdir()
    ferplus_csv = write_kaggle_csv(root / "ferplus" / "fer2013.csv", rows)
    dropped = {0, 3, len(rows) - 1, len(rows) - 4}  # two Training and two PublicTest rows
    write_ferplus(root / "ferplus" / "fer2013new.csv", rows, dropped)
    return {
        "csv": (write_kaggle_csv(root / "fer2013.csv", rows), [], held_out),
        "csv.gz": (write_kaggle_csv(root / "fer2013.csv.gz", rows), [], held_out),
        "folder": (write_image_tree(root / "images", {"train": 4, "test": 2}), [], 2 * len(EMOTIONS)),
        "ferplus": (ferplus_csv, ["--ferplus", "probability"], held_out - 2),
    }


@pytest.fixture(scope="module")
def csv_model(module_env, layouts, tmp_path_factory):
    """One trained model, reused by the tests that only need some valid model."""
    output = tmp_path_factory.mktemp("csv-run") / "run"
    result = train(layouts["csv"][0], output)
    assert result.exit_code == 0, result.output
    return output

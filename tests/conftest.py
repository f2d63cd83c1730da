"""Shared pytest fixtures."""

# ---------------------------------------------------------------------------------------
# Display stage harness (tests/test_display.py, tests/test_web.py): the test plays capture,
# classify and the supervisor around one display stage running in a spawned child process.
# ---------------------------------------------------------------------------------------

import logging as _logging
import multiprocessing as _multiprocessing
import shutil as _shutil
import socket as _socket
import time as _time
from pathlib import Path as _Path

import pytest as _pytest
import zmq as _zmq

from fakeblock.common import wire as _wire
from fakeblock.common.endpoints import ipc_endpoints as _ipc_endpoints
from fakeblock.common.endpoints import make_run_directory as _make_run_directory

DISPLAY_SEND_TIMEOUT_MS = 5000
DISPLAY_EXIT_TIMEOUT_S = 20.0


class DisplayHarness:
    """Sockets around a display stage child: PUB control and PULL status bound (supervisor),
    PUSH connected to ``results`` (classify) and ``display_frames`` (capture).

    Every send and receive has a timeout; :meth:`close` ends the child if a test left it running.
    """

    def __init__(self, run_directory):
        self.endpoints = _ipc_endpoints(run_directory)
        self.context = _zmq.Context()
        self.control = self._socket(_zmq.PUB, bind=self.endpoints.control)
        self.status = self._socket(_zmq.PULL, bind=self.endpoints.status)
        self.results = self._socket(_zmq.PUSH, connect=self.endpoints.results)
        self.frames = self._socket(_zmq.PUSH, connect=self.endpoints.display_frames)
        self.process = None
        self.counters: dict = {}

    def _socket(self, socket_type, bind=None, connect=None):
        socket = self.context.socket(socket_type)
        socket.setsockopt(_zmq.LINGER, 0)
        socket.setsockopt(_zmq.SNDTIMEO, DISPLAY_SEND_TIMEOUT_MS)
        socket.setsockopt(_zmq.SNDHWM, 10000)
        if bind:
            socket.bind(bind)
        if connect:
            socket.connect(connect)
        return socket

    def start(self, config) -> None:
        """Spawn the display stage the way the supervisor does (exit code from ``child_main``)."""
        from fakeblock.common.control.workers import child_main

        context = _multiprocessing.get_context("spawn")
        self.process = context.Process(target=child_main, name="test-display",
                                       args=("display", config, self.endpoints, 0, _logging.INFO))
        self.process.start()

    def send(self, socket, message) -> None:
        """Encode and send one message (raises ``zmq.Again`` after the send timeout)."""
        socket.send_multipart(_wire.encode(message))

    def wait_exit(self, timeout_s: float = DISPLAY_EXIT_TIMEOUT_S) -> int:
        """The child's exit code; fails the test when it is still running after ``timeout_s``."""
        self.process.join(timeout_s)
        assert not self.process.is_alive(), f"the display stage did not exit within {timeout_s} s"
        return self.process.exitcode

    def stop(self, timeout_s: float = DISPLAY_EXIT_TIMEOUT_S) -> int:
        """Order a stop (repeated: PUB drops messages to a subscriber still joining) and wait."""
        deadline_s = _time.monotonic() + timeout_s
        while self.process.is_alive() and _time.monotonic() < deadline_s:
            self.control.send_multipart(_wire.encode(_wire.Control("stop")))
            self.process.join(0.2)
        return self.wait_exit(0)

    def read_status(self, until=lambda counters: True, timeout_s: float = 10.0) -> dict:
        """Read heartbeats until ``until(counters)`` holds; the latest display counters."""
        deadline_s = _time.monotonic() + timeout_s
        while _time.monotonic() < deadline_s:
            if self.status.poll(100, _zmq.POLLIN):
                message = _wire.decode(self.status.recv_multipart())
                if isinstance(message, _wire.Status) and message.stage == "display":
                    self.counters = dict(message.counters)
                    if until(self.counters):
                        return self.counters
        raise AssertionError(f"no display heartbeat matched within {timeout_s} s; last: {self.counters}")

    def close(self) -> None:
        """End a leftover child and close every socket."""
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(2)
        for socket in (self.control, self.status, self.results, self.frames):
            socket.close()
        self.context.term()


@_pytest.fixture
def display_harness():
    """A :class:`DisplayHarness` in a short private folder (ipc paths are limited to ~100 bytes)."""
    run_directory = _make_run_directory()
    harness = DisplayHarness(run_directory)
    try:
        yield harness
    finally:
        harness.close()
        _shutil.rmtree(run_directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Training CLI (tests/test_train.py, tests/test_distill.py, tests/test_ensemble.py): tiny
# synthetic datasets of every layout and one trained model, built once per module. The helpers
# are imported inside the fixtures so that sessions without training tests never load them.
# ---------------------------------------------------------------------------------------

@_pytest.fixture(scope="module")
def module_env(tmp_path_factory):
    """A cache folder for module-scoped fixtures (monkeypatch itself is per test)."""
    with _pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAKEBLOCK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield patch


@_pytest.fixture
def cache_in_tmp(monkeypatch, tmp_path):
    """A dataset cache folder of the test's own; the training modules use it for every test
    (``pytest.mark.usefixtures``), so no test reads another's cache."""
    monkeypatch.setenv("FAKEBLOCK_CACHE_DIR", str(tmp_path / "cache"))


@_pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, tuple[_Path, list[str], int]]:
    """Each layout: (data path, extra train/eval options, number of held-out faces)."""
    from fakeblock.common.preprocess import EMOTIONS
    from tests.training import labelled_rows, write_ferplus, write_image_tree, write_kaggle_csv

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


@_pytest.fixture(scope="module")
def csv_model(module_env, layouts, tmp_path_factory) -> _Path:
    """One trained model, reused by the tests that only need some valid model."""
    from tests.training import train

    output = tmp_path_factory.mktemp("csv-run") / "run"
    result = train(layouts["csv"][0], output)
    assert result.exit_code == 0, result.output
    return output


# ---------------------------------------------------------------------------------------
# Two-host site on loopback (tests/test_deploy_pipeline.py, tests/test_recovery.py).
# ---------------------------------------------------------------------------------------

@_pytest.fixture
def site(tmp_path):
    """A :class:`tests.helpers.Site` whose supervisors are ended after the test; skips where
    the second loopback address cannot be bound."""
    from tests.helpers import WORKER_HOST, Site

    try:
        with _socket.socket() as probe:
            probe.bind((WORKER_HOST, 0))
    except OSError:
        _pytest.skip(f"{WORKER_HOST} is not a loopback address here")
    made = Site(tmp_path)
    yield made
    made.close()

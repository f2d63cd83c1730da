"""Shared pytest fixtures."""

# ---------------------------------------------------------------------------------------
# Display stage harness (tests/test_display.py, tests/test_web.py): the test plays capture,
# classify and the supervisor around one display stage running in a spawned child process.
# ---------------------------------------------------------------------------------------

import logging as _logging
import multiprocessing as _multiprocessing
import shutil as _shutil
import time as _time

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

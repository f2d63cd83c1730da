"""What the supervisor reads each turn of its loop: heartbeats from its stages and ``fakeblock status`` requests.

A heartbeat counts only when it decodes and comes from a worker this supervisor runs
(its name and its current pid); anything else on the status link is dropped and counted
on the board (``malformed_heartbeats``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import zmq

from fakeblock.common import wire
from fakeblock.common.runtime import POLL_INTERVAL_MS, receive_message
from fakeblock.control.status.service import StatusService
from fakeblock.control.status.view import StatusBoard
from fakeblock.control.supervisor.workers import Worker

LOGGER = logging.getLogger(__name__)


class StatusInbox:
    """The status link and the status service's sockets, read into the board and answered."""

    def __init__(self, board: StatusBoard, workers: list[Worker]):
        self.board, self.workers = board, workers

    def read(self, status: zmq.Socket, service: StatusService, make_report: Callable[[], wire.StatusReport]) -> None:
        """Wait up to one poll interval for heartbeats or status requests and handle what came."""
        poller = zmq.Poller()
        for link in (status, *service.sockets):
            poller.register(link, zmq.POLLIN)
        try:
            ready = {link for link, _event in poller.poll(POLL_INTERVAL_MS)}
        except zmq.ZMQError as error:  # interrupted by a signal
            LOGGER.debug("poll interrupted: %s", error)
            return
        if status in ready:
            self._read_status(status)
        service.answer(ready, make_report)

    def read_final(self, status: zmq.Socket) -> None:
        """Every heartbeat still waiting once the stages have exited (each sends one as it closes)."""
        self._read_status(status)

    def _read_status(self, status: zmq.Socket) -> None:
        """Every heartbeat waiting; malformed ones, and any not from a worker running here
        (name and pid), are dropped and counted."""
        while status.poll(0):
            message = receive_message(status, self._drop_malformed)
            if isinstance(message, wire.Status) and self._from_own_worker(message):
                self.board.update(message)
            elif message is not None:
                self._drop_malformed(ValueError(f"a {type(message).__name__} not from a worker of this host"))

    def _from_own_worker(self, status: wire.Status) -> bool:
        for worker in self.workers:
            if worker.name == status.name:
                return worker.process is not None and worker.process.pid == status.pid
        return False

    def _drop_malformed(self, error: ValueError) -> None:
        LOGGER.debug("dropped a malformed status message: %s", error)
        self.board.malformed += 1

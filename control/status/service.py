"""A supervisor's status service: answers ``fakeblock status`` with a :class:`~fakeblock.common.wire.StatusReport`.

Each supervisor listens on ``ipc://<run directory>/status-service`` (found through
:mod:`fakeblock.control.status.discovery`) and, with a site file, also on the ``[supervisor]`` TCP
address.  Several supervisors on one host (``--only`` subsets) cannot share that port:
the first takes it and the others only warn, since ``fakeblock status`` on the machine
itself still finds them all.  The sockets are ROUTERs, not REPs: a
malformed request is simply dropped, which would leave a REP socket stuck waiting to
answer it.  With keys configured they are CURVE servers behind the supervisor's
allow-list, like every other listening socket.
"""

from __future__ import annotations

import logging
from typing import Callable

import zmq

from fakeblock.common import wire
from fakeblock.common.errors import UserError
from fakeblock.common.runtime import receive_parts
from fakeblock.common.security.access import Security, check_bind_allowed
from fakeblock.common.sockets import bind, make_socket

LOGGER = logging.getLogger(__name__)
# A handful of people running `fakeblock status` at once, no more.
SERVICE_HWM = 16
REQUESTS_PER_POLL = 16
REQUEST_PARTS = 3
MAX_REQUEST_BYTES = 4096  # an identity and a few-byte request


class StatusService:
    """ROUTER sockets on each address; :meth:`answer` replies to whatever requests are waiting."""

    def __init__(self, context: zmq.Context, security: Security, local: str | None, network: str | None = None):
        self.sockets: list[zmq.Socket] = []
        self.malformed = 0
        try:
            if local:
                self._listen(context, security, local)
            if network:
                self._listen_shared(context, security, network)
        except BaseException:
            self.close()
            raise

    def _listen(self, context: zmq.Context, security: Security, address: str) -> None:
        check_bind_allowed(address, security.config)
        socket = make_socket(context, zmq.ROUTER, SERVICE_HWM, linger_ms=0)
        self.sockets.append(socket)
        security.server(socket)
        bind(socket, address)

    def _listen_shared(self, context: zmq.Context, security: Security, address: str) -> None:
        """The site-wide address; busy means another supervisor on this host already serves it."""
        try:
            self._listen(context, security, address)
        except UserError as error:
            if "already in use" not in str(error):
                raise
            self.sockets.pop().close(linger=0)
            LOGGER.warning("status service: %s is taken (another fakeblock up on this host?); "
                           "`fakeblock status --config` will not list this supervisor's stages, "
                           "`fakeblock status` on this machine will", address)

    def answer(self, ready: set[zmq.Socket], make_report: Callable[[], wire.StatusReport]) -> int:
        """Reply to every waiting request on the ``ready`` sockets; returns how many were answered."""
        answered = 0
        for socket in self.sockets:
            if socket in ready:
                answered += self._answer_socket(socket, make_report)
        return answered

    def _answer_socket(self, socket: zmq.Socket, make_report: Callable[[], wire.StatusReport]) -> int:
        answered = 0
        for _ in range(REQUESTS_PER_POLL):
            try:
                # A REQ client's request arrives as [its identity, empty delimiter, request].
                frames = [part.bytes for part in receive_parts(socket, max_parts=REQUEST_PARTS,
                                                                 max_bytes=MAX_REQUEST_BYTES)]
            except zmq.Again:
                break
            except ValueError as error:
                LOGGER.debug("dropped an oversized status request: %s", error)
                self.malformed += 1
                continue
            if len(frames) != REQUEST_PARTS or frames[1] != b"" or not self._is_request(frames[2]):
                self.malformed += 1
                continue
            try:
                socket.send_multipart([frames[0], b"", *wire.encode(make_report())], flags=zmq.NOBLOCK)
                answered += 1
            except zmq.Again:
                LOGGER.debug("status client vanished before its answer")
        return answered

    def _is_request(self, frame: bytes) -> bool:
        try:
            return isinstance(wire.decode([frame]), wire.StatusRequest)
        except ValueError as error:
            LOGGER.debug("dropped a malformed status request: %s", error)
            return False

    def close(self) -> None:
        """Close every socket (zero linger: an unsent answer is not worth waiting for)."""
        for socket in self.sockets:
            socket.close(linger=0)
        self.sockets = []

"""``fakeblock status``: ask every supervisor of a deployment for its state, print one table.

Which supervisors: with ``--config site.toml``, every host's status service named by the
site file (:meth:`~fakeblock.control.site.loading.Site.status_endpoints`); without, every pipeline
running on this machine for this user (:mod:`fakeblock.control.status.discovery`).  All requests
go out at once and share one deadline, so a silent host costs ``timeout_s`` once, not per
host, and shows as a "no answer" row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import zmq

from fakeblock.common import wire
from fakeblock.common.runtime import receive_parts
from fakeblock.common.security.access import Security, SecurityConfig
from fakeblock.common.sockets import make_socket

LOGGER = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Target:
    """One supervisor to ask: a label for the table, its status service address, the keys to use."""

    label: str
    endpoint: str
    security: SecurityConfig


@dataclass(frozen=True)
class Answer:
    """A supervisor's report, or why there is none."""

    target: Target
    report: wire.StatusReport | None = None
    error: str | None = None


def _request_socket(context: zmq.Context, target: Target, security: Security) -> zmq.Socket:
    """A REQ socket that has sent its one request (closed again if that failed)."""
    socket = make_socket(context, zmq.REQ, 1, linger_ms=0)
    try:
        security.client(socket)
        socket.connect(target.endpoint)
        socket.send_multipart(wire.encode(wire.StatusRequest()), flags=zmq.NOBLOCK)
    except BaseException:
        socket.close(linger=0)
        raise
    return socket


def _decode_report(frames: list) -> wire.StatusReport:
    message = wire.decode(frames)
    if not isinstance(message, wire.StatusReport):
        raise ValueError(f"expected a status report, got {type(message).__name__}")
    return message


def ask(targets: list[Target], timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Answer]:
    """Send every target a status request and wait up to ``timeout_s`` in all for the answers."""
    context = zmq.Context()
    sockets: dict[zmq.Socket, Target] = {}
    answers: dict[Target, Answer] = {}
    try:
        for target in targets:
            try:
                sockets[_request_socket(context, target, Security(target.security))] = target
            except (zmq.ZMQError, OSError) as error:
                answers[target] = Answer(target, error=f"cannot ask {target.endpoint}: {error}")
        _collect(sockets, answers, time.monotonic() + timeout_s)
    finally:
        for socket in sockets:
            socket.close(linger=0)
        context.term()
    return [answers.get(target, Answer(target, error="no answer")) for target in targets]


def _collect(sockets: dict[zmq.Socket, Target], answers: dict[Target, Answer], deadline_s: float) -> None:
    poller = zmq.Poller()
    for socket in sockets:
        poller.register(socket, zmq.POLLIN)
    waiting = set(sockets)
    while waiting and (remaining_ms := int((deadline_s - time.monotonic()) * 1000)) > 0:
        for socket, _event in poller.poll(remaining_ms):
            target = sockets[socket]
            try:
                answers[target] = Answer(target, report=_decode_report(receive_parts(socket)))
            except ValueError as error:
                answers[target] = Answer(target, error=f"malformed answer: {error}")
            except zmq.Again:
                continue
            poller.unregister(socket)
            waiting.discard(socket)

"""Socket construction with the options every fakeblock socket must have.

Every socket gets a bounded linger (so closing never hangs), ``maxmsgsize`` (so an
oversized message is refused by libzmq before it reaches Python) and explicit
high-water marks.  Every receive in a stage goes through a poll with a timeout.

Oversized messages are not counted anywhere, because they cannot be told apart: libzmq
(4.3.5) refuses one by closing the sender's connection, and the socket monitor reports
that as a plain ``EVENT_DISCONNECTED`` followed by the sender reconnecting
(``EVENT_ACCEPTED``), exactly what a peer that exits and a restarted one look like.
"""

from __future__ import annotations

import errno
import socket as system_socket

import zmq

from fakeblock.common.errors import UserError
from fakeblock.common.wire import MAX_MESSAGE_BYTES

LINGER_MS = 1000
# High-water marks of links whose two ends agree on one (the others are set by the stage
# at each end, for its own side).
CONTROL_HWM = 100
STATUS_HWM = 100
# Results are tiny: a deep queue costs nothing, and when it is full classify's PUSH
# blocks, which is the backpressure lossless runs rely on.
RESULTS_HWM = 1024
# The display only parks frames until their results arrive, so it reads them quickly; a
# few frames only, so a lossless capture blocks (and a live one drops, counted at capture)
# instead of piling up seconds of video in ZeroMQ buffers.
DISPLAY_FRAMES_HWM = 4
IN_USE_PROBE_TIMEOUT_S = 1.0


def make_socket(context: zmq.Context, socket_type: int, hwm: int, linger_ms: int = LINGER_MS) -> zmq.Socket:
    """A socket with linger, maxmsgsize and send/receive high-water marks set."""
    socket = context.socket(socket_type)
    socket.setsockopt(zmq.LINGER, linger_ms)
    socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    socket.setsockopt(zmq.SNDHWM, hwm)
    socket.setsockopt(zmq.RCVHWM, hwm)
    if socket_type == zmq.SUB:
        socket.setsockopt(zmq.SUBSCRIBE, b"")
    return socket


def ipc_in_use(endpoint: str) -> bool:
    """True when ``endpoint`` is an ``ipc://`` socket something still listens on.

    libzmq binds an ``ipc://`` path by replacing whatever file is there, so a second
    pipeline would silently take the socket over from a running one; a file left by a
    run that died refuses connections and does not count.
    """
    if not endpoint.startswith("ipc://"):
        return False
    with system_socket.socket(system_socket.AF_UNIX, system_socket.SOCK_STREAM) as probe:
        probe.settimeout(IN_USE_PROBE_TIMEOUT_S)
        try:
            probe.connect(endpoint.removeprefix("ipc://"))
        except TimeoutError:  # a listener too busy to accept is still a listener
            return True
        except OSError:  # no such file, nobody listening, or not ours to reach
            return False
    return True


def bind(socket: zmq.Socket, endpoint: str) -> None:
    """Bind, turning "address in use" and bad addresses into a one-line ``UserError``."""
    if ipc_in_use(endpoint):
        raise UserError(f"{endpoint} is already in use; is another fakeblock of yours running the same "
                        f"stages? stop it first")
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as error:
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"{endpoint} is already in use; is another fakeblock running? "
                            f"choose another port") from None
        raise UserError(f"cannot listen on {endpoint}: {error}") from None


def connect(socket: zmq.Socket, endpoint: str) -> None:
    """Connect (ZeroMQ connects lazily and reconnects by itself)."""
    try:
        socket.connect(endpoint)
    except zmq.ZMQError as error:
        raise UserError(f"cannot connect to {endpoint}: {error}") from None

"""What every stage process shares: its ZeroMQ context, control and status links, counters.

A stage creates one :class:`StageRuntime` after its process starts (never before a fork
or spawn), asks it for sockets, and calls :meth:`receive`, :meth:`send` (or
:meth:`forward` for messages passed on undecoded) and :meth:`heartbeat` from its loop.
Malformed messages are logged, counted and dropped here, so no stage can be killed by a
bad peer; :func:`receive_message` does the same for a process without a runtime.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Mapping

import zmq

from fakeblock.common import wire
from fakeblock.common.counters import FRAMES_IN, IDLE_S, MALFORMED, UNEXPECTED, UPTIME_S
from fakeblock.common.endpoints import Endpoints
from fakeblock.common.security.access import Security, SecurityConfig, check_bind_allowed
from fakeblock.common.security.handshakes import HandshakeWatch
from fakeblock.common.sockets import CONTROL_HWM, STATUS_HWM, bind, connect, make_socket

LOGGER = logging.getLogger(__name__)
HEARTBEAT_INTERVAL_S = 0.5
# How often a detect worker says it is ready for a capture's frames (``wire.Ready``), and
# how long a live capture waits after the last word from its lease holder before it
# leases the stream again (four missed messages).
READY_INTERVAL_S = 0.5
LEASE_TIMEOUT_S = 2.0
POLL_INTERVAL_MS = 100
IDLE_WARNING_S = 5.0
# After a stop order a stage may take this long to finish what is in flight (the display
# drains and writes it, a capture hands over its end of stream); the supervisor waits
# longer than this before it terminates a stage.
STOP_GRACE_S = 2.0
SUPERVISOR_PID_VARIABLE = "FAKEBLOCK_SUPERVISOR_PID"
# Names a stage process (stage/worker) in its environment, for `ps e` and orphan checks.
STAGE_VARIABLE = "FAKEBLOCK_STAGE"
MALFORMED_LOG_EVERY = 100
# pyzmq copies small messages anyway (cheaper than handing over their buffers); larger
# ones, the pixel frames, are sent without a copy.
ZERO_COPY_MIN_BYTES = 65536


class StageRuntime:
    """Sockets, stop flag, counters and heartbeats of one stage worker process."""

    def __init__(self, stage: str, worker: int, endpoints: Endpoints, security: SecurityConfig | None = None,
                 handle_signals: bool = True):
        self.stage, self.worker, self.endpoints = stage, worker, endpoints
        self.context = zmq.Context()
        # None is the secure default: no keys, local binds only.
        self.security = Security(security)
        self.counters: dict[str, float] = {MALFORMED: 0}
        self.stop_requested = False
        self.finish_requested = False
        self.rewind_epoch = 0  # the newest epoch a rewind order asked a source to start
        self.started_s = time.monotonic()
        self.last_input_s = self.started_s
        self._idle_reported = False
        self._next_heartbeat_s = 0.0
        self._sockets: list[zmq.Socket] = []
        # Called at every poll, also while a send waits for room (each keeps its own pace).
        self.periodic: list[Callable[[], None]] = []
        self.handshakes: HandshakeWatch | None = None  # made with the first CURVE client socket
        self.control = self.socket(zmq.SUB, CONTROL_HWM, connect_to=endpoints.control)
        self.status = self.socket(zmq.PUSH, STATUS_HWM, connect_to=endpoints.status, linger_ms=200)
        # Under a supervisor the parent's pid is given: if the parent dies, stop rather
        # than run on as an orphan.
        supervisor_pid = os.environ.get(SUPERVISOR_PID_VARIABLE)
        self.supervisor_pid = int(supervisor_pid) if supervisor_pid and supervisor_pid.isdigit() else None
        if handle_signals:
            # A supervised child ignores SIGINT (the terminal sends it to the whole group);
            # the supervisor orders an orderly, draining stop over the control link instead.
            if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
                signal.signal(signal.SIGINT, self._on_signal)
            signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signal_number, _frame) -> None:
        LOGGER.info("%s received, stopping", signal.Signals(signal_number).name)
        self.stop_requested = True

    @property
    def name(self) -> str:
        """``stage/worker``: this worker on the wire (log lines name it by their prefix instead)."""
        return wire.worker_name(self.stage, self.worker)

    def socket(self, socket_type: int, hwm: int, bind_to: str | None = None,
               connect_to: str | tuple[str, ...] | None = None, linger_ms: int | None = None,
               options: Mapping[int, int] | None = None) -> zmq.Socket:
        """A configured socket owned by this runtime (closed by :meth:`close`).

        With keys configured a listening socket is a CURVE server behind this process's
        allow-list and a connecting one a CURVE client; without keys only local binds are
        allowed (unless insecure).  ``connect_to`` may name several endpoints (a PULL
        socket fair-queues between them).  ``options`` are set before it binds or connects.
        """
        socket = make_socket(self.context, socket_type, hwm, *(() if linger_ms is None else (linger_ms,)))
        self._sockets.append(socket)
        for option, value in (options or {}).items():
            socket.setsockopt(option, value)
        if bind_to:
            check_bind_allowed(bind_to, self.security.config)
            # The allow-list thread starts with the first listening socket: stages that
            # only connect never pay for it.
            self.security.start(self.context)
            self.security.server(socket)
            bind(socket, bind_to)
        if connect_to:
            self.security.client(socket)
            if self.security.config.keys_directory is not None:
                self._watch_handshakes(socket)
            for endpoint in (connect_to,) if isinstance(connect_to, str) else connect_to:
                connect(socket, endpoint)
        return socket

    def _watch_handshakes(self, socket: zmq.Socket) -> None:
        """Say in the log when ``socket``'s CURVE handshakes fail (its monitor closes with it)."""
        if self.handshakes is None:
            self.handshakes = HandshakeWatch(self.name, self.security.config.client_key_name)
            self.periodic.append(self.handshakes.check)
        self._sockets.append(self.handshakes.watch(socket))

    def count(self, name: str, amount: float = 1) -> None:
        """Add to a counter reported in heartbeats."""
        self.counters[name] = self.counters.get(name, 0) + amount

    def poll(self, sockets: list[zmq.Socket], timeout_ms: int = POLL_INTERVAL_MS) -> set[zmq.Socket]:
        """Wait up to ``timeout_ms`` for input; handles control messages and heartbeats itself."""
        poller = zmq.Poller()
        for socket in (self.control, *sockets):
            poller.register(socket, zmq.POLLIN)
        try:
            ready = {socket for socket, _event in poller.poll(timeout_ms)}
        except zmq.ZMQError as error:  # interrupted by a signal
            LOGGER.debug("poll interrupted: %s", error)
            ready = set()
        if self.control in ready:
            self._read_control()
        if self.supervisor_pid is not None and os.getppid() != self.supervisor_pid:
            LOGGER.warning("supervisor %d is gone, stopping", self.supervisor_pid)
            self.stop_requested = True
        for duty in self.periodic:
            duty()
        self.heartbeat()
        ready.discard(self.control)
        if ready or not sockets:  # a source stage polls no inputs: it is never idle
            self.last_input_s, self._idle_reported = time.monotonic(), False
        elif not self._idle_reported and time.monotonic() - self.last_input_s > IDLE_WARNING_S and sockets:
            LOGGER.info("no input for %.0f s: upstream is silent; waiting", IDLE_WARNING_S)
            self._idle_reported = True
        return ready

    def _read_control(self) -> None:
        while True:
            message = self.receive(self.control, flags=zmq.NOBLOCK)
            if message is None:
                return
            if not isinstance(message, wire.Control) or message.target not in ("", self.stage):
                continue
            LOGGER.debug("%s ordered", message.command)
            if message.command == wire.STOP:
                self.stop_requested = True
            elif message.command == wire.FINISH:
                self.finish_requested = True
            elif message.command == wire.REWIND:
                self.rewind_epoch = max(self.rewind_epoch, message.epoch)

    def receive(self, socket: zmq.Socket, flags: int = zmq.NOBLOCK, expect: type | None = None):
        """One decoded message, or None when nothing is waiting or the message was malformed.

        With ``expect``, a well-formed message of another kind is also dropped (counted as
        ``unexpected``), and an accepted one counts as ``frames_in``.
        """
        message = receive_message(socket, self.drop_malformed, flags)
        if message is None or expect is None:
            return message
        if not isinstance(message, expect):
            self.count(UNEXPECTED)
            return None
        self.count(FRAMES_IN)
        return message

    def drop_malformed(self, error: ValueError) -> None:
        """Count a malformed message; log the first and then one in every ``MALFORMED_LOG_EVERY``."""
        self.count(MALFORMED)
        if self.counters[MALFORMED] % MALFORMED_LOG_EVERY == 1:
            LOGGER.warning("dropped a malformed message (%d so far): %s", self.counters[MALFORMED],
                           error)

    def send(self, socket: zmq.Socket, message, block: bool = True, until_finish: bool = False) -> bool:
        """Send a message; when ``block``, wait for room while still obeying a stop order.

        ``until_finish`` also gives up on a "finish" order (a source whose readers are gone
        must still be able to end its stream).  Returns False when the message was not sent
        (no room and not blocking, or stopping).
        """
        frames = wire.encode(message)
        copy = sum(memoryview(frame).nbytes for frame in frames) < ZERO_COPY_MIN_BYTES
        return self._send_frames(socket, frames, copy, block, until_finish)

    def forward(self, socket: zmq.Socket, frames: list) -> bool:
        """Send on a message exactly as it was received (``recv_multipart(copy=False)``), without a copy.

        Waits for room like a blocking :meth:`send`, never past a stop order; returns False
        when it gave up.  The frames are not decoded: the receiving stage checks them.
        """
        return self._send_frames(socket, frames, copy=False, block=True, until_finish=False)

    def _send_frames(self, socket: zmq.Socket, frames: list, copy: bool, block: bool, until_finish: bool) -> bool:
        """The one send loop: try, and while there is no room wait for it, answering control and heartbeats."""
        while True:
            try:
                socket.send_multipart(frames, flags=zmq.NOBLOCK, copy=copy)
                return True
            except zmq.Again:
                if not block or self.stop_requested or (until_finish and self.finish_requested):
                    return False
            if socket.poll(POLL_INTERVAL_MS, zmq.POLLOUT) == 0:
                self.poll([], 0)

    def heartbeat(self, force: bool = False) -> None:
        """Send counters to the supervisor every ``HEARTBEAT_INTERVAL_S`` (never blocks)."""
        now = time.monotonic()
        if not force and now < self._next_heartbeat_s:
            return
        self._next_heartbeat_s = now + HEARTBEAT_INTERVAL_S
        counters = {**self.counters, UPTIME_S: now - self.started_s, IDLE_S: now - self.last_input_s}
        status = wire.Status(self.stage, self.worker, os.getpid(), counters)
        try:
            self.status.send_multipart(wire.encode(status), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass

    def close(self) -> None:
        """Send a final heartbeat and close every socket, the allow-list thread and the context."""
        self.heartbeat(force=True)
        for socket in self._sockets:
            socket.close()
        # The authenticator owns a socket of this context: stop it before term() waits for it.
        self.security.stop()
        self.context.term()


def receive_message(socket: zmq.Socket, on_malformed: Callable[[ValueError], None],
                    flags: int = zmq.NOBLOCK) -> wire.Message | None:
    """Take one message from ``socket`` and decode it; None when nothing was waiting or it was malformed.

    A malformed message is dropped: ``on_malformed`` gets its ``ValueError`` to count and
    log, and no exception a peer can provoke leaves.  ``socket.poll(0)`` tells a caller
    that reads until the socket is empty whether another message is waiting.
    """
    try:
        return wire.decode(receive_parts(socket, flags))
    except zmq.Again:
        return None
    except ValueError as error:
        on_malformed(error)
        return None


def receive_parts(socket: zmq.Socket, flags: int = zmq.NOBLOCK, max_parts: int | None = None,
                  max_bytes: int | None = None) -> list[zmq.Frame]:
    """The parts of one message, read one at a time (no copies): ``zmq.Again`` when none waits.

    A message of more than ``max_parts`` parts or ``max_bytes`` in all (default: the wire's
    ``MAX_MESSAGE_PARTS`` and ``MAX_MESSAGE_BYTES``) is read to its end but kept no further
    than the limit, then refused with ``ValueError``: libzmq's ``maxmsgsize`` bounds each
    part, this bounds the whole.
    """
    max_parts = wire.MAX_MESSAGE_PARTS if max_parts is None else max_parts
    max_bytes = wire.MAX_MESSAGE_BYTES if max_bytes is None else max_bytes
    parts = [socket.recv(flags=flags, copy=False)]
    total_bytes, refused = parts[0].buffer.nbytes, ""
    while socket.getsockopt(zmq.RCVMORE):
        part = socket.recv(copy=False)  # the rest of a message arrives with its first part
        total_bytes += part.buffer.nbytes
        if refused:
            continue
        if len(parts) >= max_parts or total_bytes > max_bytes:
            refused = f"more than {max_parts} parts or {max_bytes} bytes"
            parts.clear()
            continue
        parts.append(part)
    if refused:
        raise ValueError(f"message of {refused} refused ({total_bytes} bytes read)")
    return parts

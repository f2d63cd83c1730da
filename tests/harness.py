"""What tests use to stand in for a stage's peers: sockets that cannot hang, a fake supervisor,
and spawned stage processes that are always ended.

Nothing here blocks without a deadline: every receive polls with a timeout, every send has
a send timeout, every socket is closed with a bounded linger, and a context is terminated
in a helper thread with a timeout, so a socket left open fails the test by name instead of
hanging it.  The pytest fixtures built on these live in ``tests/conftest.py``.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zmq

from fakeblock.common import wire

SEND_TIMEOUT_MS = 5000
RECEIVE_TIMEOUT_S = 20.0
CLOSE_LINGER_MS = 0  # whatever a test left unsent is of no use once it is over
TERM_TIMEOUT_S = 5.0
POLL_STEP_MS = 100
# How long a receive still waits after its sender has exited: what it sent may still be in flight.
EXITED_SENDER_GRACE_S = 1.0
STOP_REPEAT_S = 0.1
PROCESS_EXIT_TIMEOUT_S = 20.0
END_PROCESS_TIMEOUT_S = 5.0
SUBSCRIPTION_TIMEOUT_S = 5.0

_inproc_names = itertools.count()


class ContextTermTimeout(AssertionError):
    """``context.term()`` did not return in time: some socket of the context is still open."""


def describe_socket(socket: zmq.Socket) -> str:
    """``PULL ipc:///tmp/x/status``: the socket's type and the last endpoint it bound or connected."""
    kind = zmq.SocketType(socket.type).name
    try:
        endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
    except zmq.ZMQError:
        endpoint = ""
    return f"{kind} {endpoint or '(never bound or connected)'}"


def open_sockets(context: zmq.Context) -> list[zmq.Socket]:
    """The sockets of ``context`` not closed yet (pyzmq keeps a weak set of them)."""
    return [socket for socket in list(getattr(context, "_sockets", ())) if not socket.closed]


def terminate_context(context: zmq.Context, timeout_s: float = TERM_TIMEOUT_S,
                      names: dict[zmq.Socket, str] | None = None) -> None:
    """``context.term()`` within ``timeout_s``, or :class:`ContextTermTimeout` naming the open sockets.

    ``term()`` blocks while any socket of the context is open, so it runs in a helper
    thread.  When it does not return in time, the sockets left open are named (from
    ``names`` when given, else by type and endpoint), then closed with no linger so the
    context can still end and later tests are not affected.
    """
    terminator = threading.Thread(target=context.term, name="zmq-context-term", daemon=True)
    terminator.start()
    terminator.join(timeout_s)
    if not terminator.is_alive():
        return
    left_open = open_sockets(context)
    described = [(names or {}).get(socket) or describe_socket(socket) for socket in left_open]
    for socket in left_open:
        socket.close(linger=0)
    terminator.join(timeout_s)
    raise ContextTermTimeout(f"context.term() did not return within {timeout_s} s: {len(described)} socket(s) "
                             f"left open: {', '.join(described) or 'none found (one in use by another thread?)'}")


class TrackedContext:
    """A ZeroMQ context that knows the sockets it made and always ends within a deadline.

    :meth:`socket` makes a socket with send and receive timeouts, binds or connects it and remembers
    it; :meth:`close` closes each with ``CLOSE_LINGER_MS`` and terminates the context with
    :func:`terminate_context`, so a socket a test made straight from :attr:`context` and
    left open fails the test by name.
    """

    def __init__(self, term_timeout_s: float = TERM_TIMEOUT_S):
        self.context = zmq.Context()
        self.term_timeout_s = term_timeout_s
        self._names: dict[zmq.Socket, str] = {}

    def socket(self, socket_type: int, bind: str | None = None, connect: str | None = None,
               receive_hwm: int | None = None, send_hwm: int | None = None,
               send_timeout_ms: int = SEND_TIMEOUT_MS,
               receive_timeout_ms: int = int(RECEIVE_TIMEOUT_S * 1000)) -> zmq.Socket:
        """A socket of this context, bound to ``bind`` or connected to ``connect``, closed by :meth:`close`.

        Even a bare ``recv`` or ``send`` on it raises ``zmq.Again`` after its timeout.
        """
        socket = self.context.socket(socket_type)
        socket.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        socket.setsockopt(zmq.SNDTIMEO, send_timeout_ms)
        socket.setsockopt(zmq.RCVTIMEO, receive_timeout_ms)
        if receive_hwm is not None:
            socket.setsockopt(zmq.RCVHWM, receive_hwm)
        if send_hwm is not None:
            socket.setsockopt(zmq.SNDHWM, send_hwm)
        if socket_type == zmq.SUB:
            socket.setsockopt(zmq.SUBSCRIBE, b"")
        kind = zmq.SocketType(socket_type).name
        if bind:
            socket.bind(bind)
            self._names[socket] = f"{kind} bound to {bind}"
        elif connect:
            socket.connect(connect)
            self._names[socket] = f"{kind} connected to {connect}"
        else:
            self._names[socket] = f"{kind} (neither bound nor connected)"
        return socket

    def close(self) -> None:
        """Close every socket made by :meth:`socket`, then terminate the context within the deadline."""
        for socket in self._names:
            socket.close(linger=CLOSE_LINGER_MS)
        terminate_context(self.context, self.term_timeout_s, self._names)


def is_running(process) -> bool:
    """Whether a ``multiprocessing.Process`` or a ``subprocess.Popen`` is still running."""
    if hasattr(process, "is_alive"):
        return process.is_alive()
    return process.poll() is None


def exit_code(process) -> int | None:
    """The exit code of a ``multiprocessing.Process`` or a ``subprocess.Popen`` (None while running)."""
    return process.exitcode if hasattr(process, "exitcode") else process.poll()


def process_name(process) -> str:
    """A name for messages: the process's own name, or its command line's first words, and its pid."""
    name = getattr(process, "name", None) or " ".join(str(part) for part in getattr(process, "args", ())[:4])
    return f"{name} (pid {process.pid})"


def receive(socket: zmq.Socket, timeout_s: float = RECEIVE_TIMEOUT_S, what: str = "a message",
            sender=None) -> wire.Message:
    """One decoded message within ``timeout_s``; fails naming ``what``.

    With ``sender`` (the process that sends it), fails as soon as that process has exited
    and nothing more arrives within ``EXITED_SENDER_GRACE_S``, naming its exit code.
    """
    deadline_s = time.monotonic() + timeout_s
    exited_s = None
    while not socket.poll(POLL_STEP_MS, zmq.POLLIN):
        now_s = time.monotonic()
        if sender is not None and not is_running(sender):
            exited_s = exited_s or now_s
            if now_s - exited_s > EXITED_SENDER_GRACE_S:
                raise AssertionError(f"{process_name(sender)} exited with code {exit_code(sender)} "
                                     f"before sending {what}")
        if now_s > deadline_s:
            raise AssertionError(f"no {what} received within {timeout_s} s")
    return wire.decode(socket.recv_multipart(zmq.NOBLOCK))


@dataclass
class SocketPair:
    """A sender and a receiver on one endpoint (PUSH/PULL or PUB/SUB), one bound, one connected."""

    sender: zmq.Socket
    receiver: zmq.Socket
    endpoint: str

    def send(self, message: wire.Message) -> None:
        """Encode and send one message (``zmq.Again`` after the send timeout)."""
        self.sender.send_multipart(wire.encode(message))

    def receive(self, timeout_s: float = RECEIVE_TIMEOUT_S) -> wire.Message:
        """One decoded message; fails when none arrives within ``timeout_s``."""
        return receive(self.receiver, timeout_s, what=f"message on {self.endpoint}")


def pair_endpoint(transport: str, run_directory: Path) -> str:
    """A fresh endpoint: ``inproc://`` with a unique name or ``ipc://`` in ``run_directory``."""
    name = f"pair-{next(_inproc_names)}"
    if transport == "inproc":
        return f"inproc://{name}"
    if transport == "ipc":
        return f"ipc://{run_directory / name}"
    raise ValueError(f"transport is inproc or ipc, not {transport!r}")


def make_pair(context: TrackedContext, pattern: str, endpoint: str) -> SocketPair:
    """A ``push_pull`` or ``pub_sub`` pair on ``endpoint``, bound the way the pipeline binds.

    PULL binds and PUSH connects (as the status link); the publisher binds and SUB
    connects (as the control link).  A PUB/SUB pair is returned once the subscription has
    reached the publisher (an XPUB, which reports it), so no message sent afterwards is
    dropped for a late subscriber.
    """
    if pattern == "push_pull":
        receiver = context.socket(zmq.PULL, bind=endpoint)
        return SocketPair(context.socket(zmq.PUSH, connect=endpoint), receiver, endpoint)
    if pattern != "pub_sub":
        raise ValueError(f"pattern is push_pull or pub_sub, not {pattern!r}")
    sender = context.socket(zmq.XPUB, bind=endpoint)
    receiver = context.socket(zmq.SUB, connect=endpoint)
    if not sender.poll(int(SUBSCRIPTION_TIMEOUT_S * 1000), zmq.POLLIN):
        raise AssertionError(f"the subscriber on {endpoint} did not subscribe within {SUBSCRIPTION_TIMEOUT_S} s")
    sender.recv()  # the subscription itself
    return SocketPair(sender, receiver, endpoint)


class FakeSupervisor:
    """The supervisor's side of a stage: binds the control (PUB) and status (PULL) links.

    It orders ``stop`` or ``finish`` (repeating them: PUB drops messages to a subscriber
    still joining) and reads heartbeats with deadlines.
    """

    def __init__(self, context: TrackedContext, endpoints):
        self.control = context.socket(zmq.PUB, bind=endpoints.control)
        self.status = context.socket(zmq.PULL, bind=endpoints.status)
        self.counters: dict[str, float] = {}

    def order(self, command: str, target: str = "") -> None:
        """Send one control order to ``target`` ("" for every stage)."""
        self.control.send_multipart(wire.encode(wire.Control(command, target)))

    def order_until_exit(self, process, command: str = "stop", target: str = "",
                         timeout_s: float = PROCESS_EXIT_TIMEOUT_S) -> int:
        """Repeat an order until ``process`` exits; its exit code, or a failure after ``timeout_s``."""
        deadline_s = time.monotonic() + timeout_s
        while process.is_alive() and time.monotonic() < deadline_s:
            self.order(command, target)
            process.join(STOP_REPEAT_S)
        assert not process.is_alive(), f"{process_name(process)} did not exit within {timeout_s} s of a {command}"
        return process.exitcode

    def read_status(self, stage: str, until: Callable[[dict], bool] = lambda counters: True,
                    timeout_s: float = 10.0, process=None) -> dict:
        """Read ``stage``'s heartbeats until ``until(counters)`` holds; those counters.

        Fails after ``timeout_s``, or once ``process`` has exited and its last heartbeats
        are read, naming the last counters seen.
        """
        deadline_s = time.monotonic() + timeout_s
        exited_s = None
        while time.monotonic() < deadline_s:
            if self.status.poll(POLL_STEP_MS, zmq.POLLIN):
                message = wire.decode(self.status.recv_multipart(zmq.NOBLOCK))
                if isinstance(message, wire.Status) and message.stage == stage:
                    self.counters = dict(message.counters)
                    if until(self.counters):
                        return self.counters
            elif process is not None and not is_running(process):
                exited_s = exited_s or time.monotonic()
                if time.monotonic() - exited_s > EXITED_SENDER_GRACE_S:
                    raise AssertionError(f"{process_name(process)} exited with code {exit_code(process)} and no "
                                         f"{stage} heartbeat matched; last: {self.counters}")
        raise AssertionError(f"no {stage} heartbeat matched within {timeout_s} s; last: {self.counters}")

    def waiting_statuses(self, quiet_ms: int = 200) -> list[wire.Status]:
        """Every heartbeat already waiting, read until none comes for ``quiet_ms``."""
        statuses = []
        while self.status.poll(quiet_ms, zmq.POLLIN):
            statuses.append(wire.decode(self.status.recv_multipart(zmq.NOBLOCK)))
        return statuses


class StageProcesses:
    """Stage processes a test spawned, the way the supervisor does; :meth:`end_all` ends any left."""

    def __init__(self):
        self.processes: list[multiprocessing.Process] = []

    def start(self, target: Callable, args: tuple, name: str) -> multiprocessing.Process:
        """Spawn ``target(*args)`` in a fresh interpreter (never fork a process with ZeroMQ threads)."""
        process = multiprocessing.get_context("spawn").Process(target=target, args=args, name=name)
        process.start()
        self.processes.append(process)
        return process

    def end_all(self) -> None:
        """SIGTERM (an orderly stop for a stage), then SIGKILL, every process still running."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(END_PROCESS_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join(END_PROCESS_TIMEOUT_S)

"""An HTTP listener that slow clients cannot starve: whole request heads first, then threads.

Python's ``ThreadingHTTPServer`` gives each accepted connection a thread at once, and that
thread then waits for the request head.  A client that sends one header line every few
seconds holds its thread for as long as it likes, and with a bound on threads a few such
clients hold them all: a Kubernetes liveness probe then goes unanswered and kills a
healthy pipeline.  Here one thread reads the heads of all connections without blocking (a
selector), each head whole within ``HEAD_DEADLINE_S`` and ``MAX_HEAD_BYTES`` or the
connection is closed.  Only a connection whose head is whole gets a handler thread, of at
most ``max_threads`` at once (more get ``503`` at once).  The probe paths are answered by
the selector's thread itself, so they never wait for a thread: their answers are a few
hundred bytes, which a new connection's send buffer always takes.

Handlers are ``http.server.BaseHTTPRequestHandler`` subclasses deriving from
:class:`HeadReadHandler`; they find their listener as ``self.server``.  Requests are
answered one per connection (HTTP/1.0).  A client that goes away costs a debug line, never
a traceback.
"""

from __future__ import annotations

import io
import logging
import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import cast
from urllib.parse import urlsplit

LOGGER = logging.getLogger(__name__)
HEAD_DEADLINE_S = 5.0  # the whole request head, from the connection's accept
MAX_HEAD_BYTES = 16 * 1024  # a longer head is answered 431 and closed
MAX_PENDING_HEADS = 512  # connections still sending their head; beyond it the oldest is closed
PROBE_WRITE_TIMEOUT_S = 0.5  # a probe answered by the selector's thread may block it this long at most
POLL_S = 0.25  # how soon the selector notices a deadline or a close
RECEIVE_BYTES = 4096
JOIN_TIMEOUT_S = 2.0
HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


@dataclass
class _Pending:
    """A connection whose request head is still arriving."""

    connection: socket.socket
    address: tuple
    deadline_s: float
    head: bytearray = field(default_factory=bytearray)


def head_end(head: bytes | bytearray) -> int | None:
    """The length of the request head in ``head`` (through its empty line), or None while it is incomplete."""
    ends = [(head.find(end), len(end)) for end in HEAD_ENDS]
    found = [start + length for start, length in ends if start >= 0]
    return min(found) if found else None


def request_path(head: bytes | bytearray) -> str:
    """The path of a request head's first line (``""`` when the line is not ``METHOD TARGET ...``)."""
    first_line = bytes(head).split(b"\n", 1)[0].decode("latin-1").split()
    return urlsplit(first_line[1]).path if len(first_line) >= 2 else ""


def plain_answer(status: int, reason: str, body: str, headers: dict[str, str]) -> bytes:
    """A whole HTTP/1.0 answer with a text body, for the answers the listener gives itself."""
    data = body.encode()
    lines = [f"HTTP/1.0 {status} {reason}", "Server: fakeblock", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(data)}", "Connection: close",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class HeadReadHandler(BaseHTTPRequestHandler):
    """A request handler that reads the head the listener already received, not the socket."""

    def setup(self) -> None:
        super().setup()
        listener = cast(HttpListener, self.server)
        head, probe = listener.take_head(self.connection)
        self.rfile = io.BytesIO(head)
        if probe:
            self.connection.settimeout(PROBE_WRITE_TIMEOUT_S)


class HttpListener:
    """Listen on ``host:port`` (0: the system picks) and serve with ``handler`` until :meth:`close`.

    ``probe_paths`` are answered on the selector's thread; ``answer_headers`` go on the
    answers the listener gives itself (busy, head too long).  Binding errors are raised as
    ``OSError`` for the caller to word.
    """

    def __init__(self, host: str, port: int, handler: type[HeadReadHandler], *, name: str, max_threads: int,
                 probe_paths: Iterable[str] = (), answer_headers: dict[str, str] | None = None):
        self._handler = handler
        self._name = name
        self._probe_paths = frozenset(probe_paths)
        self._answer_headers = dict(answer_headers or {})
        self._threads = threading.BoundedSemaphore(max_threads)
        self.max_threads = max_threads
        self._pending: dict[socket.socket, _Pending] = {}
        self._heads: dict[socket.socket, tuple[bytes, bool]] = {}
        self._heads_lock = threading.Lock()
        self._closing = False
        self._socket = _listening_socket(host, port)
        self.server_address = self._socket.getsockname()
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._socket, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> None:
        """Start the selector's thread."""
        self._thread.start()

    def take_head(self, connection: socket.socket) -> tuple[bytes, bool]:
        """The head received on ``connection`` and whether it asks for a probe path (for the handler)."""
        with self._heads_lock:
            return self._heads.pop(connection)

    def close(self) -> None:
        """Stop accepting, close every connection still sending its head and the listening socket.

        Handler threads are daemons; a handler that streams must watch its own end condition."""
        self._closing = True
        try:
            self._wake_writer.send(b"x")
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(JOIN_TIMEOUT_S)
        for pending in list(self._pending.values()):
            _close(pending.connection)
        self._pending.clear()
        self._selector.close()
        for sock in (self._socket, self._wake_reader, self._wake_writer):
            sock.close()

    # ---- the selector's thread ----------------------------------------------------------------

    def _serve(self) -> None:
        while not self._closing:
            now_s = time.monotonic()
            nearest_s = min((pending.deadline_s for pending in self._pending.values()), default=now_s + POLL_S)
            for key, _events in self._selector.select(max(0.0, min(POLL_S, nearest_s - now_s))):
                if self._closing:
                    return
                if key.fileobj is self._socket:
                    self._accept()
                elif key.fileobj is self._wake_reader:
                    self._wake_reader.recv(64)
                else:
                    self._receive(cast(_Pending, key.data))
            self._expire(time.monotonic())

    def _accept(self) -> None:
        while True:
            try:
                connection, address = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of file descriptors, say: the next round tries again
                LOGGER.debug("%s: accept failed: %s", self._name, error)
                return
            connection.setblocking(False)
            if len(self._pending) >= MAX_PENDING_HEADS:
                oldest = next(iter(self._pending.values()))
                LOGGER.debug("%s: %d heads pending; closed the oldest, from %s", self._name, MAX_PENDING_HEADS,
                             oldest.address)
                self._drop(oldest)
            pending = _Pending(connection, address, time.monotonic() + HEAD_DEADLINE_S)
            self._pending[connection] = pending
            self._selector.register(connection, selectors.EVENT_READ, pending)

    def _receive(self, pending: _Pending) -> None:
        try:
            chunk = pending.connection.recv(RECEIVE_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away before its head was whole
            self._drop(pending)
            return
        pending.head += chunk
        end = head_end(pending.head)
        if end is None and len(pending.head) > MAX_HEAD_BYTES:
            self._answer_and_drop(pending, 431, "Request Header Fields Too Large", "request head too long\n")
        elif end is not None:
            self._forget(pending)
            self._dispatch(pending.connection, pending.address, bytes(pending.head[:end]))

    def _expire(self, now_s: float) -> None:
        for pending in [pending for pending in self._pending.values() if pending.deadline_s <= now_s]:
            LOGGER.debug("%s: no whole request head from %s within %.0f s; closed", self._name, pending.address,
                         HEAD_DEADLINE_S)
            self._answer_and_drop(pending, 408, "Request Timeout", "request head too slow\n")

    def _dispatch(self, connection: socket.socket, address: tuple, head: bytes) -> None:
        probe = request_path(head) in self._probe_paths
        connection.setblocking(True)
        with self._heads_lock:
            self._heads[connection] = (head, probe)
        if probe:
            self._handle(connection, address)
        elif self._threads.acquire(blocking=False):
            thread = threading.Thread(target=self._handle_and_release, args=(connection, address),
                                      name=f"{self._name}-request", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread can be started now
                self._threads.release()
                self._refuse_busy(connection)
        else:
            self._refuse_busy(connection)

    def _refuse_busy(self, connection: socket.socket) -> None:
        with self._heads_lock:
            self._heads.pop(connection, None)
        _send_quietly(connection, plain_answer(503, "Service Unavailable",
                                               f"busy: {self.max_threads} requests at once\n", self._answer_headers))
        _close(connection)

    def _handle_and_release(self, connection: socket.socket, address: tuple) -> None:
        try:
            self._handle(connection, address)
        finally:
            self._threads.release()

    def _handle(self, connection: socket.socket, address: tuple) -> None:
        try:
            self._handler(connection, address, cast(socketserver.BaseServer, self))
        except OSError as error:  # the client went away or stalled past the handler's timeout
            LOGGER.debug("%s: client %s left: %s", self._name, address, error)
        except Exception:
            LOGGER.exception("%s: request from %s failed", self._name, address)
        finally:
            with self._heads_lock:
                self._heads.pop(connection, None)
            _close(connection)

    def _answer_and_drop(self, pending: _Pending, status: int, reason: str, body: str) -> None:
        _send_quietly(pending.connection, plain_answer(status, reason, body, self._answer_headers))
        self._drop(pending)

    def _forget(self, pending: _Pending) -> None:
        self._pending.pop(pending.connection, None)
        try:
            self._selector.unregister(pending.connection)
        except (KeyError, ValueError):
            pass

    def _drop(self, pending: _Pending) -> None:
        self._forget(pending)
        _close(pending.connection)


def _listening_socket(host: str, port: int) -> socket.socket:
    address = host.strip("[]")
    listening = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((address, port))
        listening.listen(socket.SOMAXCONN)
        listening.setblocking(False)
    except OSError:
        listening.close()
        raise
    return listening


def _send_quietly(connection: socket.socket, data: bytes) -> None:
    """Send what the socket takes at once; a client that is gone or full gets no more."""
    try:
        connection.setblocking(False)
        connection.send(data)
    except OSError:
        pass


def _close(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()

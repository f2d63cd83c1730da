"""Slow and greedy HTTP clients: trickled heads, floods, long heads, busy handlers, clients that leave.

The listener is asked over real loopback sockets, as a probe, a browser or a hostile client
would; the metrics server and the web view are the two places users meet it.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time

import pytest

from fakeblock.common import http_listener, wire
from fakeblock.common.config import SupervisorConfig
from fakeblock.common.http_listener import HeadReadHandler, HttpListener, head_end, request_path
from fakeblock.control.metrics.families import Snapshot
from fakeblock.control.metrics.http_server import HEALTH_PATH, METRICS_PATH, MetricsServer
from fakeblock.display.web import WebView
from tests.helpers import http_get

pytestmark = pytest.mark.timeout(120)
TRICKLING_CLIENTS = 200
TRICKLE_INTERVAL_S = 1.0  # one header line per client per interval: never a whole head
PROBES = 20
PROBE_TIMEOUT_S = 1.0  # what a Kubernetes probe would allow


# ---- the pure parts ------------------------------------------------------------------------

def test_a_head_ends_at_its_first_empty_line_in_either_line_ending():
    assert head_end(b"GET / HTTP/1.0\r\nHost: x\r\n") is None
    assert head_end(b"GET / HTTP/1.0\r\nHost: x\r\n\r\nbody") == len(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    assert head_end(b"GET / HTTP/1.0\n\nrest") == len(b"GET / HTTP/1.0\n\n")


def test_the_path_of_a_request_line_drops_its_query_and_tolerates_garbage():
    assert request_path(b"GET /healthz?verbose=1 HTTP/1.1\r\n\r\n") == "/healthz"
    assert request_path(b"GET http://host:9/readyz HTTP/1.1\r\n\r\n") == "/readyz"
    assert request_path(b"\xff\xfe\r\n\r\n") == ""
    assert request_path(b"\r\n\r\n") == ""


# ---- the listener on its own -----------------------------------------------------------------

class _Blocking(HeadReadHandler):
    """``/wait`` holds its thread until the test releases it; ``/probe`` answers at once; ``/leave`` fails."""

    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        if self.path == "/wait":
            self.release.wait(30)
        if self.path == "/leave":
            raise BrokenPipeError("the client went away")
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature of the base class
        pass


@pytest.fixture
def listener():
    _Blocking.release = threading.Event()
    server = HttpListener("127.0.0.1", 0, _Blocking, name="test-http", max_threads=2, probe_paths=("/probe",))
    server.start()
    try:
        yield server
    finally:
        _Blocking.release.set()
        server.close()


def ask(port: int, head: bytes, timeout_s: float = 5.0) -> bytes:
    """The whole answer to ``head`` sent at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as connection:
        connection.sendall(head)
        return read_all(connection)


def read_all(connection: socket.socket) -> bytes:
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer


def test_more_requests_than_threads_get_503_at_once_and_the_probe_is_still_answered(listener):
    waiting = [socket.create_connection(("127.0.0.1", listener.server_port), timeout=10) for _ in range(2)]
    try:
        for connection in waiting:
            connection.sendall(b"GET /wait HTTP/1.0\r\n\r\n")
        time.sleep(0.3)  # both threads now wait
        started_s = time.monotonic()
        assert ask(listener.server_port, b"GET /other HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 503")
        assert ask(listener.server_port, b"GET /probe HTTP/1.0\r\n\r\n").split(b"\r\n")[0].endswith(b"200 OK")
        assert time.monotonic() - started_s < 2.0  # neither waited for a thread
        _Blocking.release.set()
        for connection in waiting:
            assert read_all(connection).endswith(b"ok\n")
    finally:
        for connection in waiting:
            connection.close()


def test_a_head_that_never_ends_is_closed_with_408_after_the_deadline(listener, monkeypatch):
    monkeypatch.setattr(http_listener, "HEAD_DEADLINE_S", 1.0)
    with socket.create_connection(("127.0.0.1", listener.server_port), timeout=10) as connection:
        started_s = time.monotonic()
        connection.sendall(b"GET /probe HTTP/1.0\r\n")
        connection.settimeout(0.3)
        answer = b""
        while not answer:  # a header line every 0.3 s: the head grows but never ends
            try:
                answer = connection.recv(4096)
            except TimeoutError:
                connection.sendall(b"X-Slow: 1\r\n")
        assert answer.startswith(b"HTTP/1.0 408")
        assert 0.9 <= time.monotonic() - started_s < 5.0


def test_a_head_longer_than_the_limit_is_refused_with_431(listener):
    head = b"GET /probe HTTP/1.0\r\nX-Long: " + b"a" * (http_listener.MAX_HEAD_BYTES + 10)
    with socket.create_connection(("127.0.0.1", listener.server_port), timeout=10) as connection:
        try:
            connection.sendall(head)
        except OSError:  # the listener may close before taking it all; the answer is still there
            pass
        assert read_all(connection).startswith(b"HTTP/1.0 431")


def test_clients_that_leave_cost_no_error_and_no_thread(listener, caplog):
    with caplog.at_level(logging.DEBUG, logger=http_listener.__name__):
        for _ in range(5):
            assert ask(listener.server_port, b"GET /leave HTTP/1.0\r\n\r\n") == b""
            with socket.create_connection(("127.0.0.1", listener.server_port), timeout=5):
                pass  # gone before its head
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    # Both threads are free again: two waits at once are served, not refused.
    assert ask(listener.server_port, b"GET /other HTTP/1.0\r\n\r\n").endswith(b"ok\n")


# ---- trickling clients against the two real servers ------------------------------------------

class Trickle:
    """``count`` connections, each sending one more header line every interval; closed ones reconnect."""

    def __init__(self, port: int, count: int):
        self.port, self.count = port, count
        self.refusals: dict[bytes, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *_exception) -> None:
        self._stop.set()
        self._thread.join(10)

    def _connect(self, selector: selectors.BaseSelector) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        connection.sendall(b"GET /metrics HTTP/1.0\r\n")
        connection.setblocking(False)
        selector.register(connection, selectors.EVENT_READ)
        return connection

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            connections = [self._connect(selector) for _ in range(self.count)]
            next_line_s = time.monotonic() + TRICKLE_INTERVAL_S
            while not self._stop.is_set():
                for key, _ in selector.select(0.1):
                    connection = key.fileobj
                    try:
                        answer = connection.recv(4096)
                    except OSError:
                        answer = b""
                    status = answer.split(b"\r\n")[0][9:12] or b"closed"
                    self.refusals[status] = self.refusals.get(status, 0) + 1
                    selector.unregister(connection)
                    connection.close()
                    connections[connections.index(connection)] = self._connect(selector)
                if time.monotonic() >= next_line_s:
                    next_line_s += TRICKLE_INTERVAL_S
                    for connection in connections:
                        try:
                            connection.send(b"X-Trickle: 1\r\n")
                        except OSError:
                            pass
            for connection in connections:
                connection.close()


def probe_latencies(port: int, path: str, before_each=lambda: None) -> list[float]:
    latencies_s = []
    for _ in range(PROBES):
        before_each()
        started_s = time.monotonic()
        status, _body = http_get(port, path, timeout_s=PROBE_TIMEOUT_S)
        assert status == 200, f"{path} answered {status} while clients trickled"
        latencies_s.append(time.monotonic() - started_s)
        time.sleep(0.2)
    return latencies_s


@pytest.mark.slow  # a load test: 200 clients trickling for 10-16 s
def test_trickling_clients_never_keep_the_probes_or_the_metrics_from_being_answered():
    server = MetricsServer.start(SupervisorConfig(metrics_port=0))
    assert server is not None

    def supervisor_loop_publishes() -> None:
        server.snapshot = Snapshot(wire.StatusReport("testhost", 42, "running", 1.0, (), {}), time.monotonic(), 0)

    try:
        with Trickle(server.port, TRICKLING_CLIENTS) as trickle:
            time.sleep(2 * TRICKLE_INTERVAL_S)  # every one of them is part-way through its head
            assert max(probe_latencies(server.port, HEALTH_PATH, supervisor_loop_publishes)) < PROBE_TIMEOUT_S
            assert max(probe_latencies(server.port, METRICS_PATH, supervisor_loop_publishes)) < PROBE_TIMEOUT_S
            time.sleep(http_listener.HEAD_DEADLINE_S + 1)
        assert trickle.refusals.get(b"408", 0) >= TRICKLING_CLIENTS // 2  # each told why, at the deadline
    finally:
        server.close()


@pytest.mark.slow  # a load test: 200 clients trickling for 10-16 s
def test_trickling_clients_never_keep_the_web_views_page_or_health_from_being_answered():
    view = WebView("127.0.0.1", 0)
    try:
        with Trickle(view.port, TRICKLING_CLIENTS):
            time.sleep(2 * TRICKLE_INTERVAL_S)
            assert max(probe_latencies(view.port, "/healthz")) < PROBE_TIMEOUT_S
            assert max(probe_latencies(view.port, "/emotions.json")) < PROBE_TIMEOUT_S
    finally:
        view.close()

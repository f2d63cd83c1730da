"""The supervisor's HTTP endpoint: Prometheus ``/metrics``, ``/healthz`` and ``/readyz``.

Off unless ``--metrics-port`` (or ``[supervisor] metrics_port``) is given.  The server
binds before any stage starts (a busy port is one line and exit 2), runs in a daemon
thread of the supervisor and is closed when it exits.  Stage processes are spawned fresh
interpreters and Python's sockets are not inheritable, so no stage holds the port.

- ``/healthz``: 200 ``ok`` while the supervisor's loop runs (it published within
  ``LOOP_SILENT_AFTER_S``) and it has not given up on a stage; else 503.
- ``/readyz``: 200 ``ok`` when, besides, the supervisor is running (not draining or
  stopping) and every worker it runs is alive and heartbeating (running or idle); else
  503 ``not ready: <worker> <state>``.
- ``/metrics``: the families of :mod:`fakeblock.control.metrics.families`; with a token file
  only for ``Authorization: Bearer <token>`` (401 otherwise).

The server is a :class:`~fakeblock.common.http_listener.HttpListener`: a client that
trickles its request cannot hold a thread, and the two health paths are answered without
waiting for one, so a probe is answered within its timeout whatever other clients do.
The health endpoints answer anyone and say no more than that line.  Beyond loopback the
server needs a token file (:mod:`fakeblock.control.metrics.token`).
"""

from __future__ import annotations

import errno
import hmac
import logging
import threading
import time
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from fakeblock.common.config import DEFAULT_METRICS_PORT, SupervisorConfig
from fakeblock.common.errors import UserError
from fakeblock.common.http_listener import HeadReadHandler, HttpListener
from fakeblock.common.security.access import is_loopback_host
from fakeblock.control.metrics.families import Snapshot, SnapshotCollector, health_problem, readiness_problem
from fakeblock.control.metrics.token import check_metrics_settings

__all__ = ["DEFAULT_METRICS_PORT", "HEALTH_PATH", "METRICS_PATH", "READY_PATH", "MetricsServer"]

LOGGER = logging.getLogger(__name__)
METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
PUBLISH_INTERVAL_S = 0.25  # how often the supervisor's loop publishes a snapshot
REQUEST_TIMEOUT_S = 5.0  # a client that reads no answer for this long is dropped
MAX_CONCURRENT_REQUESTS = 16  # /metrics answers at once; more get 503 (probes never wait for one)
BEARER_PREFIX = "Bearer "


class _Listener(HttpListener):
    """The listener, with the :class:`MetricsServer` its handlers answer from."""

    metrics: MetricsServer


class _Handler(HeadReadHandler):
    """GET of the three paths; anything else is 404."""

    server: _Listener  # type: ignore[assignment]  # http_listener passes its listener as the server
    timeout = REQUEST_TIMEOUT_S
    server_version = "fakeblock"
    sys_version = ""  # no Python version in the Server header

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        metrics, path = self.server.metrics, urlsplit(self.path).path
        if path in (HEALTH_PATH, READY_PATH):
            check = health_problem if path == HEALTH_PATH else readiness_problem
            problem = check(metrics.snapshot, time.monotonic())
            prefix = "not healthy" if path == HEALTH_PATH else "not ready"
            self._reply(200 if problem is None else 503, "ok\n" if problem is None else f"{prefix}: {problem}\n")
        elif path == METRICS_PATH:
            if not metrics.authorized(self.headers.get("Authorization")):
                self._reply(401, "unauthorized\n", {"WWW-Authenticate": 'Bearer realm="fakeblock"'})
                return
            self._reply(200, generate_latest(metrics.registry), {"Content-Type": CONTENT_TYPE_LATEST})
        else:
            self._reply(404, "not found\n")

    def _reply(self, status: int, body: str | bytes, headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, value in {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        LOGGER.debug("metrics %s: " + format, self.address_string(), *args)


class MetricsServer:
    """The listening server and the latest snapshot; :meth:`publish` is the supervisor's only way in."""

    def __init__(self, config: SupervisorConfig, token: str | None):
        assert config.metrics_port is not None
        self.address = f"{config.metrics_host}:{config.metrics_port}"
        self.snapshot: Snapshot | None = None
        self._token = token
        self._unauthorized = 0
        self._lock = threading.Lock()
        self._next_publish_s = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SnapshotCollector(lambda: self.snapshot, time.monotonic, lambda: self._unauthorized))
        self._server = _bind(config.metrics_host, config.metrics_port)
        self._server.metrics = self

    @classmethod
    def start(cls, config: SupervisorConfig) -> MetricsServer | None:
        """Check the settings, bind and serve (None when metrics are off); a ``UserError`` when it cannot."""
        token = check_metrics_settings(config)
        if config.metrics_port is None:
            return None
        server = cls(config, token)
        server._server.start()
        if token is None:
            where = "this machine" if is_loopback_host(config.metrics_host) else "anyone who can reach it"
            LOGGER.info("metrics at http://%s%s without a token: %s can read them", server.address, METRICS_PATH,
                        where)
        else:
            LOGGER.info("metrics at http://%s%s (bearer token required)", server.address, METRICS_PATH)
        return server

    @property
    def port(self) -> int:
        """The port listened on (the one asked for; the system's choice for 0)."""
        return self._server.server_port

    def authorized(self, header: str | None) -> bool:
        """True without a token file, or when ``header`` is ``Bearer <token>``; a refusal is counted."""
        if self._token is None:
            return True
        presented = header[len(BEARER_PREFIX):].strip() if header and header.startswith(BEARER_PREFIX) else ""
        if hmac.compare_digest(presented.encode(), self._token.encode()):
            return True
        with self._lock:
            self._unauthorized += 1
        return False

    def publish(self, now_s: float, make_report, exit_code: int) -> None:
        """Replace the snapshot by a new one (at most every ``PUBLISH_INTERVAL_S``): called by the loop."""
        if now_s < self._next_publish_s:
            return
        self._next_publish_s = now_s + PUBLISH_INTERVAL_S
        # One reference swap: the HTTP thread sees the old snapshot or the new one, never half of one.
        self.snapshot = Snapshot(make_report(), now_s, exit_code)

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.close()


def _bind(host: str, port: int) -> _Listener:
    """A listener on ``host:port``, or one ``UserError`` line (busy port, no such address)."""
    try:
        return _Listener(host, port, _Handler, name="metrics-http", max_threads=MAX_CONCURRENT_REQUESTS,
                         probe_paths=(HEALTH_PATH, READY_PATH))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"metrics port {host}:{port} is already in use; choose another --metrics-port") from None
        raise UserError(f"cannot serve metrics on {host}:{port}: {error.strerror or error}") from None

"""The web view: a small HTTP server with the live annotated stream and current emotions.

Routes: ``/`` (the page), ``/stream.mjpg`` (``multipart/x-mixed-replace`` MJPEG of the
newest annotated frame), ``/emotions.json`` (the newest result record), ``/healthz``
(frames and results served, ``done`` once a replay is complete).

The stage thread only hands over references (:meth:`WebView.publish_image`); each frame
is JPEG-encoded at most once, by the first client thread that wants it, and every other
client reuses those bytes.  The server is a
:class:`~fakeblock.common.http_listener.HttpListener`: a client that trickles its request
holds no thread, and ``/healthz`` is answered without waiting for one.  Handler threads are
daemons and every wait has a timeout, so :meth:`WebView.close` never hangs on a slow or
vanished browser.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from fakeblock.common.errors import UserError
from fakeblock.common.http_listener import HeadReadHandler, HttpListener
from fakeblock.display.page import PAGE_HTML

LOGGER = logging.getLogger(__name__)
JPEG_QUALITY = 80
BOUNDARY = "fakeblockframe"
MAX_STREAM_CLIENTS = 8
MAX_OTHER_REQUESTS = 8  # page and emotions answers at once, beside the streams; more get 503
HEALTH_PATH = "/healthz"
CLIENT_TIMEOUT_S = 10.0
FRAME_WAIT_S = 0.5  # also how often an idle stream repeats its newest frame
EMPTY_RECORD: dict[str, Any] = {"stream": None, "frame": None, "time_s": None, "faces": []}
# The names a browser on this machine uses for a loopback web view.  Any other Host header
# is refused (421), so a web page from elsewhere cannot reach the view through DNS
# rebinding (a name of theirs that resolves to 127.0.0.1).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
MISDIRECTED_STATUS = 421
# Sent with every answer: the page may not be framed by another site, loads nothing from
# elsewhere, and runs only its own inline script.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'none'",
    "Referrer-Policy": "no-referrer",
}


class LiveState:
    """The newest annotated frame and result record, shared by the stage and the HTTP threads."""

    def __init__(self):
        self._condition = threading.Condition()
        self._encode_lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._jpeg: tuple[int, bytes] = (0, b"")
        self._record: dict = EMPTY_RECORD
        self.frames = self.results = 0
        self.closed = False
        self.done = False  # a replay that has written all of its frames: nothing new comes

    def set_image(self, image: np.ndarray) -> None:
        """Make ``image`` (never modified afterwards) the newest frame and wake the streams."""
        with self._condition:
            self._image = image
            self.frames += 1
            self._condition.notify_all()

    def set_record(self, record: dict) -> None:
        """Make ``record`` the newest emotions record."""
        with self._condition:
            self._record = record
            self.results += 1

    def record(self) -> dict:
        """The newest emotions record (``EMPTY_RECORD`` before the first result)."""
        with self._condition:
            return self._record

    def wait_for_jpeg(self, after_frame: int, timeout_s: float) -> tuple[int, bytes | None]:
        """The first frame newer than ``after_frame`` as JPEG, or ``(after_frame, None)`` on timeout or close."""
        with self._condition:
            self._condition.wait_for(lambda: self.closed or self.frames > after_frame, timeout_s)
            if self.closed or self.frames <= after_frame:
                return after_frame, None
            number, image = self.frames, self._image
        assert image is not None  # a frame newer than after_frame (>= 0) means set_image has run
        # Encoding happens outside the condition so the stage never waits for a browser.
        with self._encode_lock:
            if self._jpeg[0] != number:
                ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise RuntimeError("JPEG encoding failed")
                self._jpeg = (number, buffer.tobytes())
            return self._jpeg

    def close(self) -> None:
        """Wake every waiting stream so its thread ends."""
        with self._condition:
            self.closed = True
            self._condition.notify_all()


class _Listener(HttpListener):
    """The listener, with the state its handlers serve and the bound on streams."""

    state: LiveState
    stream_slots: threading.BoundedSemaphore


class _Handler(HeadReadHandler):
    server: _Listener  # type: ignore[assignment]  # http_listener passes its listener as the server
    timeout = CLIENT_TIMEOUT_S
    server_version = "fakeblock"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        """Serve one of the four routes, or 404; 421 for a Host that is not this view's loopback name."""
        if not self._host_allowed():
            self.send_error(MISDIRECTED_STATUS, "this web view answers only to its loopback address")
            return
        routes = {"/": self._page, "/index.html": self._page, "/stream.mjpg": self._stream,
                  "/emotions.json": self._emotions, HEALTH_PATH: self._health}
        route = routes.get(urlsplit(self.path).path)
        if route is None:
            self.send_error(404, "not found")
            return
        try:
            route()
        except OSError as error:  # the browser went away or stalled past CLIENT_TIMEOUT_S
            LOGGER.debug("web client %s left: %s", self.address_string(), error)

    def _host_allowed(self) -> bool:
        host = self.headers.get("Host", "")
        port = self.server.server_port
        allowed = {f"{name}:{port}" for name in LOOPBACK_NAMES}
        if port == 80:
            allowed.update(LOOPBACK_NAMES)
        return host.lower() in allowed

    def version_string(self) -> str:
        """``Server: fakeblock``, naming no Python version."""
        return self.server_version

    def end_headers(self) -> None:
        """Every answer, errors included, carries the security headers."""
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature of the base class
        """Request lines go to the debug log, not to stderr."""
        LOGGER.debug("web %s " + format, self.address_string(), *args)

    def _send(self, content_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _page(self) -> None:
        self._send("text/html; charset=utf-8", PAGE_HTML.encode("utf-8"))

    def _emotions(self) -> None:
        self._send("application/json", json.dumps(self.server.state.record()).encode("utf-8"))

    def _health(self) -> None:
        state = self.server.state
        self._send("application/json", json.dumps({"status": "ok", "frames": state.frames, "results": state.results,
                                                   "done": state.done}).encode("utf-8"))

    def _stream(self) -> None:
        if not self.server.stream_slots.acquire(blocking=False):
            self.send_error(503, f"at most {MAX_STREAM_CLIENTS} streams at once")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(f"--{BOUNDARY}\r\n".encode())
            self._stream_frames()
        finally:
            self.server.stream_slots.release()

    def _stream_frames(self) -> None:
        state, frame_number, last_jpeg = self.server.state, 0, None
        while not state.closed:
            frame_number, jpeg = state.wait_for_jpeg(frame_number, FRAME_WAIT_S)
            # When no new frame comes, repeat the last one: browsers display a part only
            # once the next part begins, and a write is how a vanished client is noticed.
            jpeg = jpeg or last_jpeg
            if jpeg is None or state.closed:
                continue
            head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            self.wfile.write(head + jpeg + f"\r\n--{BOUNDARY}\r\n".encode())
            self.wfile.flush()
            last_jpeg = jpeg


class WebView:
    """The web view's listener; :meth:`close` stops it and every stream."""

    def __init__(self, host: str, port: int):
        self.state = LiveState()
        try:
            self._server = _Listener(host, port, _Handler, name="web-view",
                                     max_threads=MAX_STREAM_CLIENTS + MAX_OTHER_REQUESTS,
                                     probe_paths=(HEALTH_PATH,), answer_headers=SECURITY_HEADERS)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UserError(f"{host}:{port} is already in use; choose another --web-port") from None
            raise UserError(f"cannot serve the web view on {host}:{port}: {error.strerror or error}") from None
        self._server.state = self.state
        self._server.stream_slots = threading.BoundedSemaphore(MAX_STREAM_CLIENTS)
        self.host, self.port = host, self._server.server_port
        self._server.start()
        LOGGER.info("web view on http://%s:%d/", host, self.port)

    def publish_image(self, image: np.ndarray) -> None:
        """Show an annotated BGR frame to every stream (the array must not change afterwards)."""
        self.state.set_image(image)

    def publish_record(self, record: dict) -> None:
        """Serve ``record`` (see :func:`fakeblock.display.core.result_record`) as ``/emotions.json``."""
        self.state.set_record(record)

    def mark_done(self) -> None:
        """Say on ``/healthz`` that the replay is complete (its last frame and totals stay served)."""
        self.state.done = True

    def close(self) -> None:
        """End every stream, stop the server and free the port."""
        self.state.close()
        self._server.close()


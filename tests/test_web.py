"""The web view: routes, MJPEG stream, port errors, clean shutdown, and the page in headless Chromium."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from fakeblock.common import wire
from fakeblock.common.config import DisplayConfig
from fakeblock.common.errors import UserError
from fakeblock.display import web
from fakeblock.display.core import result_record
from fakeblock.display.overlay import BOX_COLOUR_BGR, draw_overlay
from fakeblock.display.web import WebView
from tests.helpers import wait_until

STREAM = "web-test"
BOX = (200, 100, 120, 120)
HAPPY = (0.01, 0.02, 0.03, 0.8, 0.04, 0.05, 0.05)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def free_tcp_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port: int, path: str, timeout_s: float = 5.0) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as response:
        return response.status, response.headers["Content-Type"], response.read()


def annotated_frame(number: int) -> np.ndarray:
    frame = np.full((336, 596, 3), 60 + number % 100, np.uint8)
    return draw_overlay(frame, [(BOX, HAPPY)])


def make_result(number: int) -> wire.Result:
    return wire.Result(wire.FrameInfo(STREAM, number, number / 30, time.monotonic()), (BOX,), (HAPPY,))


def read_first_jpeg(port: int) -> bytes:
    """The first part of ``/stream.mjpg`` (headers checked)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/stream.mjpg")
        response = connection.getresponse()
        assert response.status == 200
        assert response.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={web.BOUNDARY}"
        assert response.fp.readline() == f"--{web.BOUNDARY}\r\n".encode()
        headers = {}
        while (line := response.fp.readline().strip()):
            name, value = line.decode().split(":", 1)
            headers[name.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        return response.fp.read(int(headers["content-length"]))
    finally:
        connection.close()


@pytest.fixture
def view():
    web_view = WebView("127.0.0.1", 0)
    try:
        yield web_view
    finally:
        web_view.close()


@pytest.mark.timeout(30)
def test_the_routes_serve_the_page_health_emotions_and_404(view):
    status, content_type, body = get(view.port, "/")
    assert status == 200 and content_type.startswith("text/html")
    assert b'src="/stream.mjpg"' in body and b"/emotions.json" in body
    assert json.loads(get(view.port, "/healthz")[2]) == {"status": "ok", "frames": 0, "results": 0,
                                                            "done": False}
    assert json.loads(get(view.port, "/emotions.json")[2]) == web.EMPTY_RECORD
    record = result_record(make_result(4))
    view.publish_record(record)
    status, content_type, body = get(view.port, "/emotions.json")
    assert content_type == "application/json" and json.loads(body) == record
    with pytest.raises(urllib.error.HTTPError) as error:
        get(view.port, "/nothing-here")
    assert error.value.code == 404


@pytest.mark.timeout(30)
def test_the_stream_sends_the_newest_annotated_frame_as_jpeg(view):
    view.publish_image(annotated_frame(1))
    image = cv2.imdecode(np.frombuffer(read_first_jpeg(view.port), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (336, 596, 3)
    x, y, _, height = BOX
    assert np.abs(image[y + height // 2, x].astype(int) - BOX_COLOUR_BGR).sum() < 90


@pytest.mark.timeout(30)
def test_each_frame_is_encoded_once_however_many_clients_watch(view, monkeypatch):
    encodes, real_imencode = [], cv2.imencode

    def counting_imencode(*args, **kwargs):
        encodes.append(1)
        return real_imencode(*args, **kwargs)

    monkeypatch.setattr(web.cv2, "imencode", counting_imencode)
    view.publish_image(annotated_frame(2))
    first, second, third = (read_first_jpeg(view.port) for _ in range(3))
    assert first == second == third
    assert len(encodes) == 1


@pytest.mark.timeout(30)
def raw_get(port: int, host: str | None) -> tuple[int, dict[str, str]]:
    """Status and headers of ``GET /`` sent with the given Host header (None: none at all)."""
    request = "GET / HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host is not None else "") + "Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = client.recv(4096)
            if not chunk:
                break
            answer += chunk
    head = answer.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    return int(head[0].split()[1]), headers


def test_only_loopback_host_names_are_answered_and_every_answer_is_hardened(view):
    port = view.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        status, headers = raw_get(port, host)
        assert status == 200, host
        assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Server"] == "fakeblock"  # no Python version
    # DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1.
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}", "", None):
        status, headers = raw_get(port, host)
        assert status == 421, host
        assert headers["X-Frame-Options"] == "DENY" and headers["Server"] == "fakeblock"


def test_a_busy_port_is_one_clear_user_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError) as error:
            WebView("127.0.0.1", port)
    assert str(error.value) == f"127.0.0.1:{port} is already in use; choose another --web-port"


@pytest.mark.timeout(30)
def test_closing_ends_open_streams_quickly_and_frees_the_port():
    port = free_tcp_port()
    view = WebView("127.0.0.1", port)
    view.publish_image(annotated_frame(3))
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        client.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert client.recv(64).startswith(b"HTTP/1.0 200")
        started_s = time.monotonic()
        view.close()
        assert time.monotonic() - started_s < 2.0
        while client.recv(65536):  # the server ends the stream: recv returns b"" (never hangs: 5 s timeout)
            pass
    finally:
        client.close()
    WebView("127.0.0.1", port).close()  # the port is free again


# ---- the stage's web view in a real headless browser -------------------------------------

def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium to render the page (Debian package chromium)")


def screenshot(browser: str, url: str, tmp_path) -> np.ndarray:
    """Chromium's screenshot of ``url`` once the page has loaded (the first MJPEG part shown).

    ``--timeout`` makes Chromium shoot anyway after 20 s, so a stream that never renders
    fails the assertions below instead of hanging; its own session lets a hung browser
    be killed with all its helper processes.
    """
    png = tmp_path / "page.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=800,600",
               "--timeout=20000", f"--screenshot={png}", url]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("chromium did not finish its screenshot within 90 s")
    assert png.exists(), f"chromium wrote no screenshot (exit {process.returncode}): {stderr[-2000:]}"
    return cv2.imread(str(png), cv2.IMREAD_COLOR)


def shown_frames(port: int) -> dict | None:
    """The web view's ``/healthz`` answer, or None while the stage is still starting."""
    try:
        return json.loads(get(port, "/healthz", timeout_s=1)[2])
    except OSError:
        return None


def wait_for_frames(port: int, frames: int, process, timeout_s: float = 20.0) -> dict:
    """``/healthz`` once the web view has shown ``frames`` frames; fails if ``process`` exits first."""
    def enough() -> dict | None:
        health = shown_frames(port)
        return health if health is not None and health["frames"] >= frames else None

    return wait_until(enough, timeout_s, f"the web view on port {port} to show {frames} frames", process,
                      interval_s=0.1)


@pytest.mark.slow  # a headless browser renders the page: end to end, about 3.5 s
@pytest.mark.timeout(180)
def test_the_page_shows_the_annotated_stream_in_headless_chromium(display_harness, tmp_path):
    browser = chromium_path()
    port = free_tcp_port()
    display_harness.start(DisplayConfig(outputs=("web",), web_port=port))
    for number in range(10):
        frame = np.full((336, 596, 3), 60 + 10 * number, np.uint8)
        info = wire.FrameInfo(STREAM, number, number / 30, time.monotonic())
        display_harness.send(display_harness.frames, wire.Frame(info, frame))
        display_harness.send(display_harness.results, wire.Result(info, (BOX,), (HAPPY,)))
    wait_for_frames(port, 10, display_harness.process)
    assert json.loads(get(port, "/emotions.json")[2])["frame"] == 9
    page = screenshot(browser, f"http://127.0.0.1:{port}/", tmp_path)
    assert page.shape[:2] == (600, 800)
    assert page.std() > 20, "the screenshot is blank"
    # The stream sits above the table; only the overlay uses this pure green.
    box_coloured = np.abs(page[:420].astype(int) - BOX_COLOUR_BGR).sum(axis=2) < 60
    assert box_coloured.sum() > 300, "the green face box of the overlay is not on the page"
    rows, columns = np.nonzero(box_coloured)
    assert columns.max() - columns.min() > 100 and rows.max() - rows.min() > 100, "no box-shaped green outline"
    # Below the stream: status line, table header and, once the script has fetched
    # /emotions.json, one row for the face - three bands of light text.
    text_rows = (page[405:].max(axis=2) > 150).any(axis=1).astype(int)
    assert np.count_nonzero(np.diff(text_rows) == 1) + text_rows[0] >= 3, "the emotions table has no face row"
    assert display_harness.stop() == 0
    with socket.socket() as probe:
        # Connections the server closed linger in TIME_WAIT; only a listener would refuse this.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()

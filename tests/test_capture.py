"""Capture: sources (files, images, folders, demo, bad input), pacing, and the stage over ipc sockets."""

from __future__ import annotations

import contextlib
import functools
import http.server
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq

from fakeblock.capture.core import CAMERA_HINT, cut_short, file_position_s, normalize_frame, open_source
from fakeblock.capture.demo import DEMO_FRAME_COUNT
from fakeblock.capture.flow import FLOW_LIVE, FLOW_LOSSLESS, Pacer, RateMeter, choose_flow_mode
from fakeblock.capture.stage import run_capture
from fakeblock.common import wire
from fakeblock.common.config import CaptureConfig
from fakeblock.common.endpoints import ipc_endpoints
from fakeblock.common.errors import UserError
from fakeblock.common.wire import MAX_DIMENSION_PX
from tests.harness import receive
from tests.helpers import MEDIA, shared_file

VIDEO_FRAMES = 12
VIDEO_FPS = 10.0
VIDEO_SIZE_PX = (64, 48)  # width, height
RECEIVE_TIMEOUT_S = 20.0
RECEIVE_HWM = 1000


def grey_level(frame_index: int) -> int:
    return 20 + 18 * frame_index


def write_video(path: Path, frame_count: int = VIDEO_FRAMES, fps: float = VIDEO_FPS) -> Path:
    """A small mp4 whose frame ``i`` is uniformly ``grey_level(i)``, so order can be checked."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, VIDEO_SIZE_PX)
    assert writer.isOpened()
    for frame_index in range(frame_count):
        writer.write(np.full((VIDEO_SIZE_PX[1], VIDEO_SIZE_PX[0], 3), grey_level(frame_index), np.uint8))
    writer.release()
    return path


@pytest.fixture
def video(tmp_path) -> Path:
    return write_video(tmp_path / "clip.mp4")


# --- sources ---------------------------------------------------------------------------

def test_a_video_file_yields_every_frame_in_order_with_its_time(video):
    with open_source(str(video)) as source:
        readings = list(source)
        assert (source.name, source.fps, source.live, source.frame_count) == ("clip", VIDEO_FPS, False, VIDEO_FRAMES)
    assert len(readings) == VIDEO_FRAMES
    for frame_index, (pixels, position_s) in enumerate(readings):
        assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8
        assert abs(float(pixels.mean()) - grey_level(frame_index)) < 8
        assert position_s == pytest.approx(frame_index / VIDEO_FPS, abs=0.01)


def test_a_file_cut_short_is_read_to_where_it_ends_with_one_warning(tmp_path, caplog):
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    generator = np.random.default_rng(0)
    for _ in range(60):
        writer.write(generator.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    cut = tmp_path / "cut.avi"  # the first half: an AVI's header still says 60 frames
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    with caplog.at_level("WARNING", logger="fakeblock.capture.core"):
        with open_source(str(whole)) as source:
            assert len(list(source)) == 60
        assert not caplog.records
        with open_source(str(cut)) as source:
            read = len(list(source))
    assert source.frame_count == 60 and 20 < read < 40
    assert [record.getMessage() for record in caplog.records] == [
        f"cut: ended after {read} of the 60 frames its container announces: the file is cut short or damaged, "
        "and the rest of it could not be read"]


def test_a_rounded_container_length_is_no_cut():
    assert not cut_short(298, 300, 30.0) and not cut_short(100, 101, None)
    assert cut_short(270, 300, 30.0) and cut_short(97, 100, None)
    assert not cut_short(5, None, 30.0)


def test_realtime_paces_a_file_at_its_own_rate_and_makes_it_live(tmp_path):
    fast = write_video(tmp_path / "fast.mp4", frame_count=8, fps=20.0)
    with open_source(str(fast), realtime=True) as source:
        assert source.live
        started_s = time.monotonic()
        assert len(list(source)) == 8
    # Eight frames at 20 fps span 7 / 20 s; an unpaced replay takes a few milliseconds.
    assert time.monotonic() - started_s >= 0.9 * 7 / 20.0


def test_an_image_is_one_frame_named_after_the_file(tmp_path):
    path = tmp_path / "portrait.png"
    cv2.imwrite(str(path), np.full((30, 40), 77, np.uint8))  # grey input still gives BGR frames
    with open_source(str(path)) as source:
        readings = list(source)
        assert (source.name, source.live, source.frame_count) == ("portrait", False, 1)
    assert len(readings) == 1 and readings[0][0].shape == (30, 40, 3) and readings[0][1] == 0.0


def test_a_folder_gives_its_images_sorted_by_name_and_ignores_other_files(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for name, level in (("b.png", 100), ("a.jpg", 50), ("c.bmp", 150)):
        cv2.imwrite(str(folder / name), np.full((20, 20, 3), level, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    with open_source(str(folder)) as source:
        levels = [round(float(pixels.mean()) / 50) * 50 for pixels, _ in source]
        assert source.name == "shots"
    assert levels == [50, 100, 150]


def test_the_shared_video_has_all_its_frames_at_29_97_fps():
    with open_source(str(shared_file(MEDIA / "office-woman.mp4"))) as source:
        assert source.name == "office-woman" and source.fps == pytest.approx(29.97)
        assert source.frame_count == 464 and not source.live
        positions_s = [position_s for _pixels, position_s in source]
    assert len(positions_s) == 464
    assert positions_s == sorted(positions_s)
    assert positions_s[-1] == pytest.approx(463 / 29.97, abs=0.05)


@pytest.mark.parametrize("name, shape", [("justin.jpg", (384, 381, 3)), ("no-faces.jpg", (148, 199, 3))])
def test_the_shared_photos_are_single_frames(name, shape):
    with open_source(str(shared_file(MEDIA / name))) as source:
        readings = list(source)
    assert len(readings) == 1 and readings[0][0].shape == shape


def test_a_stream_url_is_live_and_named_after_its_host(video):
    handler = functools.partial(QuietFileHandler, directory=str(video.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with open_source(f"http://127.0.0.1:{server.server_address[1]}/{video.name}") as source:
            positions_s = [position_s for _pixels, position_s in source]
            assert (source.name, source.live, source.frame_count) == ("127.0.0.1", True, None)
    finally:
        server.shutdown()
        server.server_close()
    assert len(positions_s) == VIDEO_FRAMES
    assert positions_s == sorted(positions_s) and positions_s[-1] < 10  # seconds since opening


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_arguments) -> None:
        pass


# --- bad input -------------------------------------------------------------------------

def bad_input_cases(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "x.mp4").write_bytes(np.random.default_rng(1).bytes(20000))
    (tmp_path / "x.jpg").write_bytes(np.random.default_rng(2).bytes(2000))
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("no images here")
    return [(str(tmp_path / "missing.mp4"), "no such file"),
            (str(tmp_path / "x.mp4"), "cannot decode video"),
            (str(tmp_path / "x.jpg"), "cannot decode image"),
            (str(tmp_path / "empty"), "folder has no images"),
            (str(tmp_path / "texts"), "folder has no images"),
            ("9", CAMERA_HINT),
            ("ftp://example.com/video.mp4", "unsupported address"),
            ("rtsp://127.0.0.1:1/nothing-listens-here", "cannot open stream")]


def test_bad_input_is_one_clear_line(tmp_path):
    for spec, expected in bad_input_cases(tmp_path):
        with pytest.raises(UserError) as raised:
            open_source(spec)
        message = str(raised.value)
        assert expected in message and "\n" not in message, (spec, message)


def test_the_stage_refuses_a_bad_source_before_opening_sockets(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        run_capture(CaptureConfig(source=str(tmp_path / "missing.mp4")), ipc_endpoints(tmp_path))


# --- demo ------------------------------------------------------------------------------

@pytest.mark.slow  # the full-frame Haar scan of all the demo's frames: 15-20 s on a busy 2-core machine
def test_the_demo_is_a_finite_clip_with_a_moving_face_haar_can_find():
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    with open_source("demo") as source:
        assert (source.name, source.fps, source.live, source.frame_count) == ("demo", 30.0, False, DEMO_FRAME_COUNT)
        readings = list(source)
    assert len(readings) == DEMO_FRAME_COUNT
    assert all(pixels.shape == (480, 640, 3) and pixels.dtype == np.uint8 for pixels, _ in readings)
    boxes = [cascade.detectMultiScale(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(48, 48))
             for pixels, _ in readings]
    found = [faces for faces in boxes if len(faces) >= 1]
    # One face in every frame: the face, and no phantom face in the softened background.
    assert [index for index, faces in enumerate(boxes) if len(faces) != 1] == []
    centers_x = [x + width / 2 for (x, _y, width, _h), *_ in found]
    widths = [width for (_x, _y, width, _h), *_ in found]
    assert max(centers_x) - min(centers_x) > 150  # the face travels across the frame
    assert max(widths) > 1.15 * min(widths)  # and the zoom changes its size


def test_a_live_demo_loops_seamlessly_past_its_length():
    with open_source("demo", realtime=True) as source:
        assert source.live and source.frame_count is None
        readings = []
        for reading in source.frames(wait=lambda _delay_s: None):  # no real sleeping in this test
            readings.append(reading)
            if len(readings) == DEMO_FRAME_COUNT + 2:
                break
    np.testing.assert_array_equal(readings[DEMO_FRAME_COUNT][0], readings[0][0])
    assert readings[DEMO_FRAME_COUNT + 1][1] > readings[DEMO_FRAME_COUNT][1]


# --- pure helpers ----------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_the_pacer_schedules_frames_at_fps_and_never_bursts_after_a_stall():
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock, max_lag_s=1.0)
    assert pacer.delay_s(0) == 0.0
    assert pacer.delay_s(1) == pytest.approx(0.1)
    clock.now_s += 0.25
    assert pacer.delay_s(2) == 0.0  # 50 ms late: send at once
    assert pacer.delay_s(3) == pytest.approx(0.05)
    clock.now_s += 5.0  # a stall: the schedule restarts instead of rushing 50 frames out
    assert pacer.delay_s(4) == 0.0
    assert pacer.delay_s(5) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        Pacer(0.0)


def test_the_fps_gauge_counts_recent_frames_only():
    clock = FakeClock()
    meter = RateMeter(window_s=2.0, clock=clock)
    assert meter.tick() == 0.0
    for _ in range(10):
        clock.now_s += 0.1
        rate = meter.tick()
    assert rate == pytest.approx(10.0)
    clock.now_s += 10.0  # a pause forgets the old rate
    meter.tick()
    clock.now_s += 0.5
    assert meter.tick() == pytest.approx(2.0)


def test_the_flow_mode_follows_the_source_unless_the_user_chooses():
    assert choose_flow_mode(source_live=True, live_override=None) == FLOW_LIVE
    assert choose_flow_mode(source_live=False, live_override=None) == FLOW_LOSSLESS
    assert choose_flow_mode(source_live=True, live_override=False) == FLOW_LOSSLESS
    assert choose_flow_mode(source_live=False, live_override=True) == FLOW_LIVE


def test_file_positions_use_sane_timestamps_and_fall_back_to_the_frame_rate():
    assert file_position_s(1500.0, 45, 30.0, 1.4) == 1.5
    assert file_position_s(0.0, 45, 30.0, 1.4) == 1.5  # a backend stuck at 0
    assert file_position_s(float("nan"), 10, 20.0, 0.4) == 0.5
    assert file_position_s(100.0, 10, 20.0, 0.4) == 0.5  # running backwards
    assert file_position_s(-5.0, 3, None, 0.0) == pytest.approx(0.1)  # unknown fps: assume 30


def test_frames_are_made_bgr_and_small_enough_for_the_wire():
    assert normalize_frame(np.zeros((10, 12), np.uint8)).shape == (10, 12, 3)
    assert normalize_frame(np.zeros((10, 12, 4), np.uint8)).shape == (10, 12, 3)
    huge = normalize_frame(np.zeros((100, MAX_DIMENSION_PX * 2, 3), np.uint8))
    assert huge.shape == (50, MAX_DIMENSION_PX, 3)


# --- the stage over ipc sockets ----------------------------------------------------------

def _run_capture_child(config: CaptureConfig, endpoints) -> None:
    sys.exit(run_capture(config, endpoints))


class CapturePeers:
    """The test's side of every link of one capture stage child: the supervisor's PUB/PULL
    (a :class:`~tests.harness.FakeSupervisor`), a detect worker's DEALER and display's PULL."""

    def __init__(self, context, supervisor, endpoints, processes, frames_hwm: int):
        self.supervisor, self.endpoints, self._processes = supervisor, endpoints, processes
        self.display = context.socket(zmq.PULL, bind=endpoints.display_frames, receive_hwm=RECEIVE_HWM)
        self.frames = context.socket(zmq.DEALER, connect=endpoints.frames, receive_hwm=frames_hwm)
        self.child = None

    def start(self, config: CaptureConfig) -> None:
        """Start the stage in a spawned child (ended after the test if it is still running)."""
        self.child = self._processes.start(_run_capture_child, (config, self.endpoints), name="test-capture")

    def receive(self, socket, timeout_s: float = RECEIVE_TIMEOUT_S):
        """One message from the child; fails after ``timeout_s``, or early once it exited with nothing left."""
        return receive(socket, timeout_s, what="a message from capture", sender=self.child)

    def receive_frame(self) -> wire.Frame:
        """One frame leased to this reader, saying it is ready first, as a detect worker does."""
        with contextlib.suppress(zmq.Again):
            self.frames.send_multipart(wire.encode(wire.Ready("detect/0@test:1")), flags=zmq.NOBLOCK)
        frame = self.receive(self.frames)
        assert isinstance(frame, wire.Frame), f"the frames link carried {frame!r}"
        return frame

    def receive_until_end(self, socket) -> tuple[list[wire.Frame], wire.EndOfStream]:
        """The display link's frames and its end, after the stream's announcement that opens it."""
        start = self.receive(socket)
        assert isinstance(start, wire.StreamStart), f"the display link began with {start!r}, not an announcement"
        frames = []
        while not isinstance(message := self.receive(socket), wire.EndOfStream):
            frames.append(message)
        assert message.stream == start.stream
        return frames, message

    def last_status(self) -> wire.Status:
        statuses = self.supervisor.waiting_statuses()
        assert statuses, "the stage sent no heartbeat"
        return statuses[-1]

    def stop(self, within_s: float = 5.0) -> None:
        """Order a stop as the supervisor does (repeatedly: PUB drops to late joiners); expect exit 0."""
        code = self.supervisor.order_until_exit(self.child, "stop", "capture", timeout_s=within_s)
        assert code == 0, f"capture exited {code} after a stop"


@pytest.fixture
def capture_peers(zmq_context, fake_supervisor, stage_endpoints, stage_processes):
    """Make the test's sockets on every link (``capture_peers(frames_hwm)``); all closed, the child ended, after."""
    def make(frames_hwm: int = RECEIVE_HWM) -> CapturePeers:
        return CapturePeers(zmq_context, fake_supervisor, stage_endpoints, stage_processes, frames_hwm)

    return make


@pytest.mark.timeout(60)
def test_a_file_replay_delivers_every_frame_to_a_slow_consumer_then_exits(video, capture_peers):
    peers = capture_peers(frames_hwm=1)
    peers.start(CaptureConfig(source=str(video)))
    received = []
    for _ in range(VIDEO_FRAMES):
        received.append(peers.receive_frame())
        time.sleep(0.05)  # slower than the file decodes: lossless must wait, not drop
    shown, end = peers.receive_until_end(peers.display)
    peers.stop()
    assert [frame.info.frame_number for frame in received] == list(range(VIDEO_FRAMES))
    assert {frame.info.stream for frame in received} == {"clip"}
    assert all(abs(float(frame.pixels.mean()) - grey_level(frame.info.frame_number)) < 8 for frame in received)
    assert [frame.info.frame_number for frame in shown] == list(range(VIDEO_FRAMES))
    assert end == wire.EndOfStream("clip", VIDEO_FRAMES)
    counters = peers.last_status().counters
    assert (counters["frames_in"], counters["frames_out"], counters.get("dropped", 0)) == (12, 12, 0)
    assert not peers.frames.poll(200)  # nothing beyond the file


@pytest.mark.timeout(60)
def test_max_frames_limits_the_replay_and_the_display_still_gets_the_count(video, capture_peers):
    peers = capture_peers()
    peers.start(CaptureConfig(source=str(video), stream="door", max_frames=5, send_frames_to_display=False))
    received = [peers.receive_frame() for _ in range(5)]
    assert peers.receive(peers.display) == wire.StreamStart("door", 5)  # announced: 5 of the file's frames
    assert peers.receive(peers.display) == wire.EndOfStream("door", 5)  # no Frame before it
    peers.stop()
    assert [(frame.info.stream, frame.info.frame_number) for frame in received] == [("door", n) for n in range(5)]
    assert not peers.frames.poll(200)


@pytest.mark.timeout(60)
def test_a_live_source_drops_stale_frames_and_stops_promptly_on_order(capture_peers):
    peers = capture_peers(frames_hwm=1)
    peers.start(CaptureConfig(source="demo", live=True))
    numbers = []
    for _ in range(6):
        numbers.append(peers.receive_frame().info.frame_number)
        time.sleep(0.3)  # a slow pipeline: a live source must skip ahead, not queue up
    assert numbers == sorted(numbers) and max(np.diff(numbers)) > 1
    peers.stop(within_s=5.0)
    shown, end = peers.receive_until_end(peers.display)
    counters = peers.last_status().counters
    assert counters["dropped"] > 0 and counters["frames_in"] == counters["frames_out"] + counters["dropped"]
    # The count covers every number sent (the display waits for nothing beyond it);
    # the dropped numbers below it are holes.
    assert end.stream == "demo" and counters["frames_out"] < end.frame_count <= counters["frames_in"]
    assert max(numbers) < end.frame_count
    assert shown and all(frame.info.frame_number < end.frame_count for frame in shown)

"""The display stage: overlay, records, ordering, latency, outputs, and the stage over ipc sockets."""

from __future__ import annotations

import functools
import json
import os
import random
import select
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakeblock.common import wire
from fakeblock.common.config import DisplayConfig
from fakeblock.common.errors import UserError
from fakeblock.common.preprocess import EMOTIONS
from fakeblock.common.runtime import StageRuntime
from fakeblock.display import core, outputs, stage
from fakeblock.display.core import latency_percentiles, result_record
from fakeblock.display.order import FrameOrderer, Joined
from fakeblock.display.overlay import BOX_COLOUR_BGR, draw_overlay
from tests.helpers import MEDIA, fuzz_generator, line_count, seed_on_failure, shared_file, wait_until

STREAM = "office-woman"
BOX = (200, 100, 120, 120)
HAPPY = (0.01, 0.02, 0.03, 0.8, 0.04, 0.05, 0.05)
FPS = 25.0


def scores_for(frame_number: int) -> tuple[float, ...]:
    """Seven scores whose top emotion cycles with the frame number (0.7 for it, 0.05 for the rest)."""
    return tuple(0.7 if index == frame_number % 7 else 0.05 for index in range(7))


def make_result(frame_number: int, faces: int = 1, stream: str = STREAM, captured_s: float = 0.0) -> wire.Result:
    boxes = tuple((20 + 70 * index, 30, 60, 60) for index in range(faces))
    return wire.Result(wire.FrameInfo(stream, frame_number, frame_number / FPS, captured_s), boxes,
                       tuple(scores_for(frame_number) for _ in range(faces)))


def make_frame(frame_number: int, size_px: tuple[int, int] = (320, 240), stream: str = STREAM) -> wire.Frame:
    width, height = size_px
    pixels = np.full((height, width, 3), (40 + 5 * frame_number) % 200, np.uint8)
    return wire.Frame(wire.FrameInfo(stream, frame_number, frame_number / FPS, 0.0), pixels)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for_lines(path: Path, count: int, process, timeout_s: float = 5.0) -> None:
    """Wait until the results file holds ``count`` lines (it is flushed every half second) while ``process`` runs."""
    wait_until(lambda: line_count(path) >= count, timeout_s, f"{count} lines in {path}", process)


def read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


# ---- overlay ---------------------------------------------------------------------------

@pytest.mark.parametrize("size_px", [(596, 336), (640, 480)])
def test_overlay_draws_on_a_read_only_frame_around_and_beside_the_face(size_px):
    width, height = size_px
    frame = read_only(np.full((height, width, 3), 90, np.uint8))
    image = draw_overlay(frame, [(BOX, HAPPY)])
    assert image.shape == frame.shape and image.flags.writeable
    assert (frame == 90).all(), "the input frame must not be drawn on"
    x, y, box_width, box_height = BOX
    assert tuple(image[y + box_height // 2, x]) == BOX_COLOUR_BGR  # the box's left edge
    assert (image[y + 5:y + box_height - 5, x + 5:x + box_width - 5] == 90).all(), "the face itself stays visible"
    assert (image[y:y + box_height, x + box_width + 5:x + box_width + 100] != 90).any(axis=2).mean() > 0.3
    assert (image[y - 20:y, x:x + 60] != 90).any(), "the top emotion label sits above the box"
    assert (image[height - 10:, :40] == 90).all(), "far from the face nothing changes"


def test_overlay_puts_the_bars_inside_the_frame_for_a_face_at_the_right_edge():
    frame = read_only(np.full((336, 596, 3), 90, np.uint8))
    image = draw_overlay(frame, [((500, 200, 90, 90), HAPPY)])
    left_of_face = image[200:290, 380:495]
    assert (left_of_face != 90).any(axis=2).mean() > 0.3


def test_overlay_of_a_grey_frame_is_colour_and_no_faces_is_an_unchanged_copy():
    grey = read_only(np.full((120, 160), 70, np.uint8))
    assert draw_overlay(grey, [((10, 10, 40, 40), HAPPY)]).shape == (120, 160, 3)
    frame = read_only(np.full((120, 160, 3), 70, np.uint8))
    copy = draw_overlay(frame, [])
    assert copy is not frame and copy.flags.writeable and np.array_equal(copy, frame)


def test_overlay_on_the_shared_photo_marks_the_face():
    photo = cv2.imread(str(shared_file(MEDIA / "justin.jpg")))
    box = (120, 100, 150, 150)
    image = draw_overlay(read_only(photo), [(box, HAPPY)])
    assert (image != photo).any(axis=2).sum() > 2000
    assert tuple(image[box[1] + 75, box[0]]) == BOX_COLOUR_BGR


# ---- records, percentiles, frame rate ------------------------------------------------------

def test_result_record_has_the_exact_shape_of_a_results_line():
    scores = (0.012345, 0.0, 0.1, 0.654321, 0.2, 0.033334, 0.0)
    result = wire.Result(wire.FrameInfo(STREAM, 7, 0.23356, 99.0), ((10, 20, 30, 40),), (scores,))
    assert result_record(result) == {
        "stream": STREAM, "frame": 7, "time_s": 0.234,
        "faces": [{"box": [10, 20, 30, 40], "emotion": "happy",
                   "scores": {"angry": 0.0123, "disgust": 0.0, "fear": 0.1, "happy": 0.6543, "sad": 0.2,
                              "surprise": 0.0333, "neutral": 0.0}}],
    }
    record = json.loads(json.dumps(result_record(result)))
    assert list(record["faces"][0]["scores"]) == list(EMOTIONS)
    assert all(type(value) is int for value in record["faces"][0]["box"])
    empty = wire.Result(wire.FrameInfo(STREAM, 8, 0.0, 0.0), (), ())
    assert result_record(empty) == {"stream": STREAM, "frame": 8, "time_s": 0.0, "faces": []}


def test_latency_percentiles():
    percentiles = latency_percentiles(range(1, 101))
    assert percentiles == pytest.approx({"p50": 50.5, "p95": 95.05, "p99": 99.01})
    assert latency_percentiles([12.0]) == {"p50": 12.0, "p95": 12.0, "p99": 12.0}
    assert latency_percentiles([]) == {}


def test_latency_window_reports_milliseconds_and_ignores_other_hosts_clocks():
    window = core.LatencyWindow()
    assert "latency_p50_ms" not in window.counters() and window.counters()["latency_count"] == 0
    window.add(captured_s=10.0, now_s=10.05)
    window.add(captured_s=50.0, now_s=10.0)  # captured on another host: meaningless
    reported = window.counters()
    assert {name: reported[name] for name in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")} == \
        pytest.approx({"latency_p50_ms": 50.0, "latency_p95_ms": 50.0, "latency_p99_ms": 50.0})
    assert reported["latency_count"] == 1 and reported["latency_sum_s"] == pytest.approx(0.05)


def test_fps_comes_from_source_positions_or_defaults_to_30():
    def info(number, position_s):
        return wire.FrameInfo(STREAM, number, position_s, 0.0)

    assert core.fps_from_positions(info(0, 0.0), info(1, 1 / 29.97)) == pytest.approx(29.97)
    assert core.fps_from_positions(info(0, 0.0), info(2, 0.0)) == core.DEFAULT_FPS
    assert core.fps_from_positions(info(0, 0.0), info(1, 1e-6)) == core.DEFAULT_FPS


# ---- ordering ------------------------------------------------------------------------------

def released_numbers(joined) -> list[int]:
    return [entry.frame_number for entry in joined]


def test_lossless_orderer_releases_in_frame_order_and_never_skips():
    orderer = FrameOrderer(live=False, needs_frames=False, announced=(STREAM,))
    for number in (2, 0, 3):
        orderer.add_result(make_result(number), now_s=0.0)
    assert released_numbers(orderer.release(now_s=0.0)) == [0]
    assert orderer.release(now_s=3600.0) == [], "lossless waits for frame 1 however long it takes"
    orderer.add_result(make_result(1), now_s=3600.0)
    orderer.end_stream(STREAM, 4, now_s=3600.0)
    assert released_numbers(orderer.release(now_s=3600.0)) == [1, 2, 3]
    assert orderer.finished() and orderer.skipped == 0


def test_lossless_orderer_joins_pixels_and_stops_waiting_for_them_at_the_end_of_the_stream():
    orderer = FrameOrderer(live=False, needs_frames=True, announced=(STREAM,))
    orderer.add_result(make_result(0), now_s=0.0)
    orderer.add_result(make_result(1), now_s=0.0)
    assert orderer.release(now_s=10.0) == [], "frame 0's pixels have not come yet"
    orderer.add_frame(make_frame(0), now_s=10.0)
    (first,) = orderer.release(now_s=10.0)
    assert first.frame is not None and first.result is not None
    orderer.end_stream(STREAM, 2, now_s=11.0)  # every frame precedes the end: frame 1 sent no pixels
    (second,) = orderer.release(now_s=11.0)
    assert second.frame_number == 1 and second.frame is None and orderer.finished()


def test_pixels_dropped_at_capture_do_not_hold_up_later_frames():
    orderer = FrameOrderer(live=True, needs_frames=True, max_wait_s=1.0, announced=(STREAM,))
    orderer.add_result(make_result(0), now_s=0.0)  # capture dropped frame 0's pixels for the display
    assert orderer.release(now_s=0.1) == []
    orderer.add_frame(make_frame(1), now_s=0.2)  # pixels come in order: frame 0's will never come
    orderer.add_result(make_result(1), now_s=0.2)
    released = orderer.release(now_s=0.2)
    assert released_numbers(released) == [0, 1] and released[0].frame is None and released[1].frame is not None
    assert orderer.missing_pixels == 1


def test_orderer_discards_duplicates_late_arrivals_and_frames_past_the_end():
    orderer = FrameOrderer(live=False, needs_frames=False, announced=(STREAM,))
    assert orderer.add_result(make_result(0), now_s=0.0)
    assert not orderer.add_result(make_result(0), now_s=0.0)
    orderer.release(now_s=0.0)
    assert not orderer.add_result(make_result(0), now_s=0.0)
    orderer.end_stream(STREAM, 2, now_s=0.0)
    assert not orderer.add_result(make_result(2), now_s=0.0)
    assert orderer.discarded == 3 and not orderer.finished()


def test_live_orderer_skips_a_hole_after_the_maximum_wait_and_counts_it():
    orderer = FrameOrderer(live=True, needs_frames=False, max_wait_s=1.0, announced=(STREAM,))
    for number in (0, 2, 3):
        orderer.add_result(make_result(number), now_s=5.0)
    assert released_numbers(orderer.release(now_s=5.5)) == [0]
    assert released_numbers(orderer.release(now_s=6.0)) == [2, 3]
    assert orderer.skipped == 1
    assert not orderer.add_result(make_result(1), now_s=6.1) and orderer.discarded == 1


def test_live_orderer_drops_unmatched_frames_and_releases_results_without_pixels():
    orderer = FrameOrderer(live=True, needs_frames=True, max_wait_s=1.0, announced=(STREAM,))
    orderer.add_frame(make_frame(0), now_s=0.0)  # its result never comes
    orderer.add_result(make_result(1), now_s=0.2)  # its pixels never come
    orderer.add_frame(make_frame(2), now_s=0.3)
    orderer.add_result(make_result(2), now_s=0.4)
    assert orderer.release(now_s=0.9) == []
    released = orderer.release(now_s=1.3)
    assert released_numbers(released) == [1, 2]
    assert released[0].frame is None and released[1].frame is not None
    assert (orderer.unmatched, orderer.skipped, orderer.missing_pixels) == (1, 1, 1)


def test_live_orderer_gives_up_on_missing_frames_at_the_end_of_a_stream():
    orderer = FrameOrderer(live=True, needs_frames=False, max_wait_s=1.0, announced=(STREAM,))
    orderer.add_result(make_result(0), now_s=0.0)
    orderer.end_stream(STREAM, 3, now_s=0.0)
    assert released_numbers(orderer.release(now_s=0.5)) == [0] and not orderer.finished()
    orderer.release(now_s=1.5)
    assert orderer.finished() and orderer.skipped == 2


def test_flush_writes_every_held_result_in_order_despite_holes():
    orderer = FrameOrderer(live=False, needs_frames=True, announced=(STREAM,))
    orderer.add_result(make_result(3), now_s=0.0)
    orderer.add_frame(make_frame(3), now_s=0.0)
    orderer.add_result(make_result(1), now_s=0.0)
    orderer.add_frame(make_frame(2), now_s=0.0)  # no result: nothing to write
    assert orderer.pending_frames == 2
    assert released_numbers(orderer.flush()) == [1, 3]
    assert orderer.unmatched == 1 and orderer.pending == 0


def test_streams_are_ordered_independently():
    orderer = FrameOrderer(live=False, needs_frames=False, expected_streams=2, announced=("a", "b"))
    orderer.add_result(make_result(1, stream="a"), now_s=0.0)
    orderer.add_result(make_result(0, stream="b"), now_s=0.0)
    assert [(entry.stream, entry.frame_number) for entry in orderer.release(0.0)] == [("b", 0)]
    orderer.end_stream("b", 1, now_s=0.0)
    assert not orderer.finished(), "stream a has not ended"


def test_a_stream_that_ends_before_another_one_starts_does_not_end_the_run():
    orderer = FrameOrderer(live=False, needs_frames=False, expected_streams=2, announced=("phone", "office"))
    orderer.add_result(make_result(0, stream="phone"), now_s=0.0)
    orderer.end_stream("phone", 1, now_s=0.0)
    assert released_numbers(orderer.release(0.0)) == [0]
    assert not orderer.finished(), "the second camera has not sent anything yet"
    orderer.add_result(make_result(0, stream="office"), now_s=1.0)
    orderer.end_stream("office", 1, now_s=1.0)
    orderer.release(1.0)
    assert orderer.finished()


# ---- outputs -------------------------------------------------------------------------------

def test_a_bad_results_path_fails_at_start_with_one_clear_line(tmp_path):
    with pytest.raises(UserError, match="cannot write results to .*missing"):
        outputs.ResultsWriter(str(tmp_path / "missing" / "results.jsonl"))
    with pytest.raises(UserError, match="cannot record to"):
        outputs.Outputs(DisplayConfig(record=str(tmp_path / "missing" / "video.mp4")))


def test_the_results_file_is_created_at_start_and_flushed_on_close(tmp_path):
    path = tmp_path / "results.jsonl"
    writer = outputs.ResultsWriter(str(path))
    assert path.exists()
    writer.write(make_result(0))
    writer.close()
    assert read_lines(path) == [result_record(make_result(0))]


class FakeWindowGui:
    """Stands in for cv2's window functions: a key press and a visibility to report."""

    def __init__(self, monkeypatch, key: int = -1, visible: float = 1.0, key_after_show: int = -1):
        self.key, self.visible, self.shown, self.key_after_show = key, visible, 0, key_after_show
        monkeypatch.setattr(outputs, "screen_available", lambda: True)
        monkeypatch.setattr(cv2, "namedWindow", lambda *args: None)
        monkeypatch.setattr(cv2, "destroyWindow", lambda *args: None)
        monkeypatch.setattr(cv2, "imshow", self._imshow)
        monkeypatch.setattr(cv2, "waitKey", lambda *args: self.key)
        monkeypatch.setattr(cv2, "getWindowProperty", lambda *args: self.visible)

    def _imshow(self, *args) -> None:
        self.shown += 1
        self.key = self.key_after_show if self.key_after_show != -1 else self.key  # the user reacts to a frame


@pytest.mark.parametrize(("key", "visible"), [(ord("q"), 1.0), (27, 1.0), (-1, 0.0)])
def test_q_escape_or_closing_the_window_asks_to_quit(monkeypatch, key, visible):
    gui = FakeWindowGui(monkeypatch)
    window = outputs.Window("fakeblock")
    window.show(np.zeros((10, 10, 3), np.uint8))
    assert not window.quit_requested and gui.shown == 1
    gui.key, gui.visible = key, visible
    window.pump()
    assert window.quit_requested


@pytest.mark.timeout(60)
def test_quitting_the_window_stops_the_stage_with_the_quit_exit_code(display_harness, monkeypatch, tmp_path):
    gui = FakeWindowGui(monkeypatch, key_after_show=ord("q"))
    # In this process the stage must leave pytest's own signal handlers alone.
    monkeypatch.setattr(stage, "StageRuntime", functools.partial(StageRuntime, handle_signals=False))
    results = tmp_path / "results.jsonl"
    display_harness.send(display_harness.frames, make_frame(0))
    display_harness.send(display_harness.results, make_result(0))
    config = DisplayConfig(outputs=("window",), results=str(results))
    assert stage.run_display(config, display_harness.endpoints) == stage.QUIT_EXIT_CODE == 3
    assert gui.shown == 1
    assert len(read_lines(results)) == 1, "what was shown before quitting is written"


def test_a_window_without_a_screen_is_a_user_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="no screen"):
        outputs.Window("fakeblock")


@pytest.mark.timeout(60)
def test_the_display_never_imports_tensorflow():
    code = ("import sys, fakeblock.display.stage; "
            "sys.exit(any(name.split('.')[0] in ('tensorflow', 'keras', 'ai_edge_litert') for name in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], timeout=50).returncode == 0


# ---- the stage over ipc sockets --------------------------------------------------------------

def send_results_out_of_order(harness, numbers, seed: int = 7, faces=lambda number: number % 3) -> None:
    shuffled = list(numbers)
    random.Random(seed).shuffle(shuffled)
    for number in shuffled:
        harness.send(harness.results, make_result(number, faces=faces(number)))


@pytest.mark.timeout(60)
def test_the_stage_writes_one_line_per_frame_in_order_and_exits_0(display_harness, tmp_path):
    results = tmp_path / "results.jsonl"
    display_harness.start(DisplayConfig(results=str(results)))
    send_results_out_of_order(display_harness, range(40))
    display_harness.send(display_harness.frames, wire.EndOfStream(STREAM, 40))
    assert display_harness.wait_exit() == 0
    lines = read_lines(results)
    assert [line["frame"] for line in lines] == list(range(40))
    assert lines[5] == result_record(make_result(5, faces=2))
    counters = display_harness.read_status(lambda counters: counters.get("results_written") == 40)
    assert counters["results_in"] == 40 and counters["dropped"] == 0
    assert {"latency_p50_ms", "latency_p95_ms", "latency_p99_ms"} <= set(counters)


@pytest.mark.timeout(60)
def test_the_stage_joins_frames_and_records_an_mp4_of_every_frame(display_harness, tmp_path):
    video, results = tmp_path / "annotated.mp4", tmp_path / "results.jsonl"
    display_harness.start(DisplayConfig(record=str(video), results=str(results)))
    for number in range(30):  # results overtake frames, as with several classify workers
        display_harness.send(display_harness.results, make_result(29 - number, faces=1))
        display_harness.send(display_harness.frames, make_frame(number))
    display_harness.send(display_harness.frames, wire.EndOfStream(STREAM, 30))
    assert display_harness.wait_exit() == 0
    assert len(read_lines(results)) == 30
    capture = cv2.VideoCapture(str(video))
    try:
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 30
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS, rel=0.01)
        ok, first = capture.read()
    finally:
        capture.release()
    assert ok and first.shape == (240, 320, 3)
    left_edge = first[40:80, 19:22].reshape(-1, 3).astype(int)
    assert (np.abs(left_edge - BOX_COLOUR_BGR).sum(axis=1) < 120).any(), "the face box is in the video"


@pytest.mark.timeout(90)
def test_the_stage_records_the_shared_video_at_its_size(display_harness, tmp_path):
    source = cv2.VideoCapture(str(shared_file(MEDIA / "office-woman.mp4")))
    frames = []
    while len(frames) < 20:
        ok, pixels = source.read()
        assert ok
        frames.append(pixels)
    source.release()
    video = tmp_path / "office.mp4"
    display_harness.start(DisplayConfig(record=str(video)))
    for number, pixels in enumerate(frames):
        info = wire.FrameInfo(STREAM, number, number / 29.97, 0.0)
        display_harness.send(display_harness.frames, wire.Frame(info, pixels))
        display_harness.send(display_harness.results, wire.Result(info, ((250, 60, 110, 110),), (HAPPY,)))
    display_harness.send(display_harness.frames, wire.EndOfStream(STREAM, 20))
    assert display_harness.wait_exit() == 0
    capture = cv2.VideoCapture(str(video))
    assert (capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FRAME_WIDTH),
            capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (20, 596, 336)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(29.97, rel=0.01)
    capture.release()


@pytest.mark.timeout(60)
def test_malformed_messages_are_counted_and_dropped_while_the_stage_runs_on(display_harness, tmp_path):
    results = tmp_path / "results.jsonl"
    display_harness.start(DisplayConfig(results=str(results)))
    noise, seed = fuzz_generator(3)
    with seed_on_failure(seed):
        display_harness.results.send(noise.bytes(64))
        display_harness.frames.send_multipart([b"\x81\xa1v\x01", bytes(100)])  # a map without a kind, plus pixels
        display_harness.results.send_multipart([b"\x00", b"\x01", b"\x02"])
        send_results_out_of_order(display_harness, range(10))
        display_harness.send(display_harness.frames, wire.EndOfStream(STREAM, 10))
        assert display_harness.wait_exit() == 0
        assert [line["frame"] for line in read_lines(results)] == list(range(10))
        counters = display_harness.read_status(lambda counters: counters.get("malformed", 0) >= 3)
        assert counters["malformed"] == 3


@pytest.mark.timeout(60)
def test_a_stop_order_drains_and_writes_everything_received(display_harness, tmp_path):
    results = tmp_path / "results.jsonl"
    display_harness.start(DisplayConfig(results=str(results)))
    send_results_out_of_order(display_harness, [number for number in range(12) if number != 5])
    display_harness.read_status(lambda counters: counters.get("results_in") == 11)
    wait_for_lines(results, 5, display_harness.process)
    assert [line["frame"] for line in read_lines(results)] == [0, 1, 2, 3, 4], "lossless waits at the hole"
    assert display_harness.stop() == 0
    assert [line["frame"] for line in read_lines(results)] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]


@pytest.mark.timeout(60)
def test_live_mode_skips_missing_results_and_drops_their_frames(display_harness, tmp_path):
    video, results = tmp_path / "live.mp4", tmp_path / "results.jsonl"
    display_harness.start(DisplayConfig(record=str(video), results=str(results), live=True))
    for number in range(10):
        display_harness.send(display_harness.frames, make_frame(number))
        if number != 5:
            display_harness.send(display_harness.results, make_result(number))
    display_harness.send(display_harness.frames, wire.EndOfStream(STREAM, 10))
    assert display_harness.wait_exit() == 0
    assert [line["frame"] for line in read_lines(results)] == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    counters = display_harness.read_status(lambda counters: counters.get("unmatched") == 1)
    assert counters["skipped"] == 1 and counters["dropped"] == 1 and counters["frames_out"] == 9
    capture = cv2.VideoCapture(str(video))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 9
    capture.release()


@pytest.mark.timeout(90)
def test_lossless_backpressure_holds_a_bounded_number_of_frames_and_loses_none(display_harness, tmp_path):
    video, results = tmp_path / "held.mp4", tmp_path / "results.jsonl"
    display_harness.start(DisplayConfig(record=str(video), results=str(results)))
    for number in range(100):  # classify is slow: no results yet
        display_harness.send(display_harness.frames, make_frame(number, size_px=(160, 120)))
    counters = display_harness.read_status(lambda counters: counters.get("pending", 0) >= stage.MAX_PENDING_FRAMES)
    assert counters["pending"] == stage.MAX_PENDING_FRAMES, "the rest must wait in the socket, not in memory"
    send_results_out_of_order(display_harness, range(100))
    display_harness.send(display_harness.frames, wire.EndOfStream(STREAM, 100))
    assert display_harness.wait_exit() == 0
    assert [line["frame"] for line in read_lines(results)] == list(range(100))
    capture = cv2.VideoCapture(str(video))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 100
    capture.release()


@pytest.mark.timeout(60)
def test_a_bad_results_path_stops_the_stage_with_the_user_error_code(display_harness, tmp_path):
    display_harness.start(DisplayConfig(results=str(tmp_path / "no-such-folder" / "results.jsonl")))
    assert display_harness.wait_exit() == 2


# ---- the window under Xvfb ------------------------------------------------------------------

def opencv_has_gui() -> bool:
    info = cv2.getBuildInformation()
    gui_line = next((line for line in info.splitlines() if line.strip().startswith("GUI:")), "GUI: NONE")
    return gui_line.split(":", 1)[1].strip().upper() not in ("", "NONE", "NO")


@pytest.fixture
def xvfb_display():
    """A private Xvfb server; yields its DISPLAY value (Xvfb picks a free number via -displayfd)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb)")
    if not opencv_has_gui():
        pytest.skip("this OpenCV build has no GUI backend (opencv-python-headless?)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 15)
        number = os.read(read_end, 32).decode().strip() if ready else ""
        if not number:
            pytest.fail("Xvfb did not start within 15 s")
        yield f":{number}"
    finally:
        os.close(read_end)
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


@pytest.mark.timeout(90)
def test_the_window_shows_every_frame_under_xvfb_and_exits_0(display_harness, xvfb_display, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb_display)  # the spawned child inherits it
    display_harness.start(DisplayConfig(outputs=("window",)))
    for number in range(15):
        display_harness.send(display_harness.frames, make_frame(number))
        display_harness.send(display_harness.results, make_result(number))
    display_harness.send(display_harness.frames, wire.EndOfStream(STREAM, 15))
    assert display_harness.wait_exit(60) == 0
    counters = display_harness.read_status(lambda counters: counters.get("frames_out") == 15)
    assert counters["results_written"] == 15


def test_several_streams_get_a_recording_and_a_window_each(monkeypatch, tmp_path):
    gui = FakeWindowGui(monkeypatch)
    config = DisplayConfig(outputs=("window",), record=str(tmp_path / "clip.mp4"), expected_streams=2)
    sink = outputs.Outputs(config)
    try:
        for number in range(3):
            for stream in ("door", "hall"):
                frame = make_frame(number, stream=stream)
                sink.emit(Joined(stream, number, 0.0, make_result(number, stream=stream), frame))
    finally:
        sink.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip-door.mp4", "clip-hall.mp4"]
    assert sink.recorder.frames == 6 and gui.shown == 6
    assert outputs.stream_path("out/clip.mp4", "cam 1/a") == "out/clip-cam_1_a.mp4"

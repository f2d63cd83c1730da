"""Replay progress from heartbeat counters, the live view at 80 columns and the line printed at exit."""

from __future__ import annotations

import time

import pytest
from rich.console import Console

from fakeblock.common import wire
from fakeblock.common.config import CaptureConfig, DisplayConfig, PipelineConfig
from fakeblock.common.endpoints import ipc_endpoints
from fakeblock.control.status.replay_progress import (
    StreamProgress,
    WrittenFile,
    clock,
    count_lines,
    end_summary,
    figures_text,
    progress_line,
    stream_progress,
    written_files,
)
from fakeblock.control.status.view import StatusBoard


def test_one_stream_counts_the_results_written_with_its_rate_and_eta():
    [progress] = stream_progress({
        "capture/0": {"frames_total": 464, "frames_out": 130, "uptime_s": 4.0},
        "display/0": {"results_written": 116},
        "detect/0": {"frames_out": 125},
    })
    assert (progress.name, progress.frames_done, progress.frames_total) == ("capture", 116, 464)
    assert progress.fraction == pytest.approx(0.25)
    assert progress.frames_per_s == pytest.approx(29.0)
    assert progress.eta_s == pytest.approx(12.0)
    assert figures_text(progress) == "116/464 frames 25% 29.0 frames/s ETA 0:12"


def test_several_streams_count_the_frames_each_capture_sent():
    progresses = stream_progress({
        "capture/1": {"frames_total": 100, "frames_out": 50, "uptime_s": 5.0},
        "capture/0": {"frames_out": 300, "uptime_s": 10.0},
        "display/0": {"results_written": 320},
    })
    assert [(progress.name, progress.frames_done) for progress in progresses] == [("capture/0", 300),
                                                                                  ("capture/1", 50)]
    camera, replay = progresses
    assert camera.fraction is None and camera.eta_s is None
    assert figures_text(camera) == "300 frames 30.0 frames/s"
    assert replay.eta_s == pytest.approx(5.0)
    assert progress_line(progresses) == ("progress: capture/0 300 frames 30.0 frames/s; "
                                         "capture/1 50/100 frames 50% 10.0 frames/s ETA 0:05")


def test_before_the_first_frame_there_is_no_rate_and_no_eta():
    progress = StreamProgress("capture/0", 0, 464, 0.0)
    assert progress.frames_per_s == 0.0 and progress.eta_s is None and progress.fraction == 0.0
    assert StreamProgress("capture/0", 470, 464, 10.0).fraction == 1.0
    assert StreamProgress("capture/0", 470, 464, 10.0).eta_s == 0.0
    assert (clock(None), clock(12.4), clock(61), clock(3725)) == ("-:--", "0:12", "1:01", "1:02:05")


def test_the_end_summary_names_the_frames_the_time_and_every_file():
    written = [WrittenFile("results.jsonl", "464 lines"), WrittenFile("office.mp4", "464 frames"),
               WrittenFile("stats.json")]
    assert end_summary(464, 16.2, written) == ("done: 464 frames in 16.2 s (28.6 frames/s); results.jsonl: "
                                               "464 lines; office.mp4: 464 frames; stats.json")
    assert end_summary(0, 0.0, []) == "done: 0 frames in 0.0 s (0.0 frames/s)"
    # After Ctrl-C the line must not say "done" right above "interrupted at frame N of M".
    assert end_summary(160, 5.8, [], stopped=True) == "stopped: 160 frames in 5.8 s (27.6 frames/s)"


def test_written_files_counts_the_results_lines_and_skips_what_was_not_written(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text('{"frame": 0}\n{"frame": 1}\n{"frame": 2}\n')
    stats = tmp_path / "stats.json"
    stats.write_text("{}\n")
    written = written_files(str(results), str(tmp_path / "never.mp4"), 3, str(stats))
    assert written == [WrittenFile(str(results), "3 lines"), WrittenFile(str(stats))]
    assert count_lines(str(tmp_path / "missing")) is None


def _heartbeat(name: str, counters: dict) -> wire.Status:
    stage, worker = name.split("/")
    return wire.Status(stage, int(worker), 100 + int(worker), counters)


def _board(tmp_path, source: str = "/videos/office-woman.mp4") -> StatusBoard:
    results = tmp_path / "results.jsonl"
    results.write_text("{}\n" * 116)
    config = PipelineConfig(ipc_endpoints(tmp_path), capture=CaptureConfig(source=source),
                            display=DisplayConfig(results=str(results)))
    names = ["capture/0", "detect/0", "queue/0", "classify/0", "display/0"]
    board = StatusBoard(config, names)
    board.update(_heartbeat("capture/0", {"frames_in": 130, "frames_out": 130, "frames_total": 464,
                                          "uptime_s": 4.0}))
    board.update(_heartbeat("display/0", {"results_in": 118, "results_written": 116, "frames_in": 116,
                                          "frames_out": 116, "pending": 2, "latency_p95_ms": 84.0}))
    board.update(_heartbeat("classify/0", {"frames_in": 120, "frames_out": 118, "batch_size": 1,
                                           "malformed": 2}))
    return board


def test_the_live_view_shows_the_bar_and_eta_above_a_table_whole_at_80_columns(tmp_path):
    console = Console(width=80, record=True)
    console.print(_board(tmp_path).view([]))
    text = console.export_text()
    assert "…" not in text and max(len(line.rstrip()) for line in text.splitlines()) <= 80, text
    lines = text.splitlines()
    # The bar is named by what the capture reads, not by the stage.
    assert lines[0].startswith("office-woman.mp4 ") and "116/464 frames 25%" in lines[0] and "ETA 0:12" in lines[0]
    for word in ("stage", "state", "in/s", "out/s", "queue", "drops", "batch", "p95 ms", "restarts",
                 "capture", "classify", "display", "starting"):
        assert word in text, word
    assert "/0" not in text, "a stage's only worker is named by its stage alone"


def test_a_long_source_name_is_cut_so_the_bar_keeps_its_line(tmp_path):
    console = Console(width=80, record=True)
    console.print(_board(tmp_path, "/videos/" + "a-very-long-name-of-a-conference-recording" * 2 + ".mp4").view([]))
    first = console.export_text().splitlines()[0]
    assert first.startswith("a-very-long-name") and "116/464 frames 25%" in first and len(first.rstrip()) <= 80


def test_the_board_sums_up_the_run_at_exit(tmp_path):
    board = _board(tmp_path)
    board.sources_started_s = time.monotonic() - 4.0
    summary = board.end_summary()
    assert summary is not None and summary.startswith("done: 116 frames in 4.0 s (29.0 frames/s); ")
    assert summary.endswith("results.jsonl: 116 lines")
    assert StatusBoard(board.config, ["detect/0"]).end_summary() is None  # no display here: nothing to sum up

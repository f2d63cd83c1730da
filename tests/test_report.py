"""``fakeblock report``: results file -> per-stream timeline PNG and per-track summary CSV.

The aggregation on a small hand-made file (two tracks with a gap, a second stream without
tracks, a stream without faces), bad input as one error line and exit 2, and the command
on a real replay's results.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fakeblock.common.model_io import EMOTIONS
from fakeblock.control.cli.app import app
from fakeblock.control.report.command import (
    SUMMARY_HEADER,
    aggregate,
    summary_rows,
    timeline_paths,
    write_summary,
)
from fakeblock.control.report.plot import DPI, EMOTION_COLOURS, FIGURE_WIDTH_IN, binned, no_face_spans
from fakeblock.control.report.reading import read_records
from tests.helpers import MEDIA, fakeblock, read_results, shared_file

pytestmark = pytest.mark.timeout(180)
REPLAY_FRAMES = 90
REPLAY_TIMEOUT_S = 120
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HAPPY, SAD, NEUTRAL, ANGRY = (EMOTIONS.index(name) for name in ("happy", "sad", "neutral", "angry"))


def face(emotion: str, track: int | None = None) -> dict:
    """A face whose top emotion scores 0.7 and every other 0.05."""
    scores = {name: 0.7 if name == emotion else 0.05 for name in EMOTIONS}
    return {"box": [1, 2, 30, 30], **({} if track is None else {"track": track}), "emotion": emotion,
            "scores": scores, **({} if track is None else {"scores_raw": scores})}


def line(stream: str, frame: int, time_s: float, *faces: dict) -> dict:
    return {"stream": stream, "frame": frame, "time_s": time_s, "faces": list(faces)}


# Two tracks in "door" (frame 3 has no face), "hall" without tracking, interleaved, and "empty".
HAND_MADE = [
    line("door", 0, 0.0, face("happy", 1)),
    line("hall", 0, 0.0, face("happy"), face("sad")),
    line("door", 1, 0.1, face("happy", 1), face("neutral", 2)),
    line("hall", 1, 0.04, face("angry")),
    line("door", 2, 0.2, face("sad", 1), face("neutral", 2)),
    line("hall", 2, 0.08),
    line("door", 3, 0.3),
    line("door", 4, 0.4, face("happy", 2)),
    line("empty", 0, 0.0),
]
# stream, track, first frame and s, last frame and s, frames seen, shares of angry ... neutral.
EXPECTED_CSV_ROWS = [
    "door,1,0,0.000,2,0.200,3,0.0000,0.0000,0.0000,0.6667,0.3333,0.0000,0.0000",
    "door,2,1,0.100,4,0.400,3,0.0000,0.0000,0.0000,0.3333,0.0000,0.0000,0.6667",
    "hall,,0,0.000,1,0.040,3,0.3333,0.0000,0.0000,0.3333,0.3333,0.0000,0.0000",
    "empty,,,,,,0,,,,,,,",
]


def write_lines(path: Path, records: list[dict], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records) + tail)
    return path


@pytest.fixture
def hand_made(tmp_path) -> Path:
    return write_lines(tmp_path / "r.jsonl", HAND_MADE)


def test_summary_rows_per_track_and_per_untracked_stream(hand_made, tmp_path):
    rows = summary_rows(aggregate(read_records(hand_made)))
    assert rows == [row.split(",") for row in EXPECTED_CSV_ROWS]
    written = write_summary(rows, tmp_path / "summary.csv")
    assert written.read_bytes().decode() == "\n".join([",".join(SUMMARY_HEADER), *EXPECTED_CSV_ROWS]) + "\n"


def test_timeline_is_the_mean_over_faces_with_gaps_and_runs_per_track(hand_made):
    streams = aggregate(read_records(hand_made))
    assert list(streams) == ["door", "hall", "empty"]
    door = streams["door"].timeline()
    assert door.times_s.tolist() == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert door.mean_scores[1, HAPPY] == pytest.approx(0.375) and door.mean_scores[1, NEUTRAL] == pytest.approx(0.375)
    assert door.mean_scores[2, SAD] == pytest.approx(0.375) and door.mean_scores[0, HAPPY] == pytest.approx(0.7)
    assert np.isnan(door.mean_scores[3]).all() and not np.isnan(door.mean_scores[[0, 1, 2, 4]]).any()
    runs = {band.track: list(band.runs) for band in door.bands}
    assert runs == {1: [(0.0, 0.1, HAPPY), (0.2, 0.2, SAD)], 2: [(0.1, 0.2, NEUTRAL), (0.4, 0.4, HAPPY)]}
    hall = streams["hall"].timeline()
    assert hall.bands == [] and hall.track_count == 0
    assert hall.mean_scores[0, HAPPY] == pytest.approx(0.375) and hall.mean_scores[1, ANGRY] == pytest.approx(0.7)
    assert np.isnan(streams["empty"].timeline().mean_scores).all()


def test_a_track_of_one_or_two_frames_is_left_out_unless_asked_for(tmp_path):
    # phone-woman.mp4 gave 8 tracks, 7 of them one or two frames long: false detections.
    glimpse = [line("door", 0, 0.0, face("happy", 1), face("angry", 7)), line("door", 1, 0.1, face("happy", 1)),
               line("door", 2, 0.2, face("sad", 1), face("angry", 8)), line("door", 3, 0.3, face("angry", 8))]
    results = write_lines(tmp_path / "r.jsonl", glimpse)
    streams = aggregate(read_records(results))
    assert [row[1] for row in summary_rows(streams, 3)] == ["1"]
    assert [row[1] for row in summary_rows(streams, 1)] == ["1", "7", "8"]
    assert [band.track for band in streams["door"].timeline(3).bands] == [1]
    assert streams["door"].timeline(3).mean_scores[0, ANGRY] == pytest.approx((0.05 + 0.7) / 2)  # still in the mean
    for options, tracks in (((), {"1"}), (("--all-tracks",), {"1", "7", "8"})):
        report = subprocess.run(fakeblock("report", str(results), "--output", str(tmp_path / "report"), *options),
                                capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S)
        assert report.returncode == 0, report.stderr
        with open(tmp_path / "report" / "summary.csv", newline="") as handle:
            assert {row["track"] for row in csv.DictReader(handle)} == tracks
    assert "2 tracks seen in fewer than 3 frames left out" in subprocess.run(
        fakeblock("report", str(results), "--output", str(tmp_path / "again")), capture_output=True, text=True,
        timeout=REPLAY_TIMEOUT_S).stderr


def test_binning_keeps_gaps_and_no_face_spans_cover_them():
    times_s = np.arange(10) / 10
    scores = np.ones((10, len(EMOTIONS)))
    scores[5:8] = np.nan
    binned_times, binned_scores = binned(times_s, scores, max_points=5)
    assert binned_times.tolist() == pytest.approx([0.05, 0.25, 0.45, 0.65, 0.85])
    assert np.isnan(binned_scores[:, 0]).tolist() == [False, False, False, True, False]
    assert no_face_spans(times_s, ~np.isnan(scores[:, 0])) == [(pytest.approx(0.4), pytest.approx(0.4))]


def test_streams_whose_safe_names_clash_get_their_own_files(tmp_path):
    paths = timeline_paths(tmp_path, ["office-woman", "cam/1", "cam_1"])
    assert [path.name for path in paths.values()] == [
        "timeline-office-woman.png", "timeline-cam_1.png", "timeline-cam_1-2.png"]


def test_the_file_is_streamed_not_read_whole(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", HAND_MADE[:3], tail="this line is broken\n")
    assert [record.frame for record in itertools.islice(read_records(path), 3)] == [0, 0, 1]


def test_a_last_line_cut_short_is_skipped_with_a_warning(tmp_path, caplog):
    partial = json.dumps(HAND_MADE[2])[:40]
    path = write_lines(tmp_path / "r.jsonl", HAND_MADE[:2], tail=partial)
    with caplog.at_level(logging.WARNING):
        assert len(list(read_records(path))) == 2
    assert "r.jsonl:3: skipping the last line" in caplog.text
    whole_without_newline = write_lines(tmp_path / "whole.jsonl", HAND_MADE[:1], tail=json.dumps(HAND_MADE[1]))
    assert len(list(read_records(whole_without_newline))) == 2


def test_report_without_output_writes_beside_the_results_and_prints_each_file(hand_made):
    result = CliRunner().invoke(app, ["report", str(hand_made)])
    assert result.exit_code == 0, result.output
    folder = hand_made.parent / "r-report"
    expected = [folder / f"timeline-{stream}.png" for stream in ("door", "hall", "empty")] + [folder / "summary.csv"]
    assert result.output.splitlines() == [str(path) for path in expected]
    assert all(path.read_bytes().startswith(PNG_SIGNATURE) for path in expected[:3])


GOOD = json.dumps(HAND_MADE[0]) + "\n"
BAD_INPUTS = {
    "missing": (None, "{path}: no such file"),
    "empty": ("", "{path}: the file is empty"),
    "blank lines only": ("\n \n", "{path}: no complete result line in it"),
    "not JSON": (GOOD + "{not json\n" + GOOD, "{path}:2: not JSON"),
    "not an object": ("[1, 2]\n", "{path}:1: expected a JSON object, not list"),
    "no fields": (GOOD + '{"stream": "door"}\n', "{path}:2: missing 'frame'"),
    "bad time": (GOOD.replace('"time_s": 0.0', '"time_s": "soon"'), "{path}:1: 'time_s' must be a number"),
    "face without scores": (json.dumps(line("door", 0, 0.0, {"emotion": "happy"})) + "\n",
                            "{path}:1: face 1: missing 'scores'"),
    "unknown emotion": (GOOD.replace('"emotion": "happy"', '"emotion": "bored"'),
                        "{path}:1: face 1: 'emotion' must be one of"),
    "not text": ("\udcff\udcfe\n", "{path}:1: not UTF-8 text"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, case):
    content, expected = BAD_INPUTS[case]
    path = tmp_path / "r.jsonl"
    if content is not None:
        path.write_bytes(content.encode("utf-8", errors="surrogateescape"))
    result = CliRunner().invoke(app, ["report", str(path), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [result.output.strip()], result.output
    assert result.output.startswith("error: " + expected.format(path=path)), result.output
    assert not (tmp_path / "out").exists()


def test_the_cli_starts_without_matplotlib():
    code = "import sys; import fakeblock.control.cli.app; print('matplotlib' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.stdout.strip() == "False", completed.stderr


@pytest.fixture(scope="module")
def replay_results(tmp_path_factory) -> Path:
    """The results file of a real 90-frame replay of office-woman.mp4 (with tracking)."""
    video = shared_file(MEDIA / "office-woman.mp4")
    results = tmp_path_factory.mktemp("replay") / "r.jsonl"
    completed = subprocess.run(fakeblock("up", "--no-status", "--source", str(video), "--display", "none",
                                         "--results", str(results), "--max-frames", str(REPLAY_FRAMES)),
                               capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return results


def _assert_is_the_timeline_png(path: Path) -> None:
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    image = cv2.imread(str(path))
    assert image is not None, f"{path} does not decode"
    height_px, width_px = image.shape[:2]
    assert width_px == FIGURE_WIDTH_IN * DPI and 400 <= height_px <= 2000, image.shape
    happy_bgr = np.array([int(EMOTION_COLOURS["happy"][index:index + 2], 16) for index in (5, 3, 1)])
    assert (np.abs(image.astype(int) - happy_bgr).sum(axis=2) < 30).sum() > 500, "no happy line drawn"


@pytest.mark.slow
def test_report_of_a_real_replay(replay_results, tmp_path):
    output = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(replay_results), "--output", str(output)])
    assert result.exit_code == 0, result.output
    png, summary = output / "timeline-office-woman.png", output / "summary.csv"
    assert result.output.splitlines() == [str(png), str(summary)]
    _assert_is_the_timeline_png(png)
    lines = read_results(replay_results)
    faces = [each for record in lines for each in record["faces"]]
    with summary.open(newline="") as file:
        header, *rows = list(csv.reader(file))
    assert tuple(header) == SUMMARY_HEADER
    tracks = {str(each["track"]) for each in faces}
    assert sorted(row[1] for row in rows) == sorted(tracks) and all(row[0] == "office-woman" for row in rows)
    assert sum(int(row[6]) for row in rows) == len(faces) > 0
    for row in rows:
        assert math.isclose(sum(float(share) for share in row[7:]), 1.0, abs_tol=1e-3)

"""``fakeblock analyze``: tables that fit 80 columns, JSON lines on stdout, bad input in one line."""

from __future__ import annotations

import io
import json
import subprocess

import pytest
from rich.console import Console
from typer.testing import CliRunner

from fakeblock.api.analyzer import Analyzer
from fakeblock.control.cli.analyze_command import Printer
from fakeblock.control.cli.app import app
from tests.helpers import MEDIA, fakeblock, shared_file

pytestmark = pytest.mark.timeout(180)
COMMAND_TIMEOUT_S = 120
TERMINAL_COLUMNS = 80


def analyze(*arguments: str):
    return CliRunner().invoke(app, ["analyze", *arguments])


def assert_one_line_error(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], result.output


def test_a_photo_prints_a_table_of_its_one_face():
    result = analyze(str(shared_file(MEDIA / "justin.jpg")))
    assert result.exit_code == 0, result.output
    assert "justin.jpg: 1 face" in result.stdout
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("1 ")]
    number, corner, size, emotion, *scores = row.split()
    assert emotion in {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert scores[0] == emotion and len(scores) == 6 and "," in corner and "x" in size


def test_json_is_one_line_per_image_on_stdout_and_logs_stay_on_stderr():
    photo = shared_file(MEDIA / "justin.jpg")
    completed = subprocess.run(fakeblock("analyze", "--json", str(photo)), capture_output=True, text=True,
                               timeout=COMMAND_TIMEOUT_S, check=False)
    assert completed.returncode == 0, completed.stderr
    (line,) = completed.stdout.splitlines()
    record = json.loads(line)
    assert record["path"] == str(photo) and len(record["faces"]) == 1
    face = record["faces"][0]
    assert set(face) == {"box", "emotion", "scores"} and face["emotion"] == max(face["scores"], key=face["scores"].get)


def test_no_face_is_said_and_is_no_error():
    result = analyze(str(shared_file(MEDIA / "no-faces.jpg")))
    assert result.exit_code == 0, result.output
    assert "no-faces.jpg: no face found" in result.stdout


def test_a_video_gives_one_json_line_per_frame_and_a_folder_one_per_image(tmp_path):
    clip = shared_file(MEDIA / "office-woman.mp4")
    result = analyze("--json", "--max-frames", "5", "--tracking", "off", str(clip))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["frame"] for line in lines] == list(range(5))
    assert all(line["path"] == str(clip) and line["stream"] == "office-woman" for line in lines)
    assert all("track" not in face for line in lines for face in line["faces"])
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("justin.jpg", "no-faces.jpg"):
        (folder / name).write_bytes((MEDIA / name).read_bytes())
    (folder / "broken.png").write_bytes(b"not a png")  # skipped with a warning, as --source folder/ does
    result = analyze("--json", str(folder))
    assert result.exit_code == 0, result.output
    counts = {json.loads(line)["path"]: len(json.loads(line)["faces"]) for line in result.stdout.splitlines()}
    assert counts == {str(folder / "justin.jpg"): 1, str(folder / "no-faces.jpg"): 0}


def test_tables_fit_80_columns_one_line_per_face():
    clip = shared_file(MEDIA / "office-woman.mp4")
    output = io.StringIO()
    printer = Printer(as_json=False, console=Console(file=output, width=TERMINAL_COLUMNS))
    with Analyzer() as analyzer:
        printer.image(str(MEDIA / "justin.jpg"), analyzer.analyze(MEDIA / "justin.jpg"))
        printer.video(str(clip), analyzer.analyze_video(clip, max_frames=10))
    lines = output.getvalue().splitlines()
    assert max(len(line) for line in lines) <= TERMINAL_COLUMNS
    # Title, header, rule and one row per face (and a video's summary): nothing wrapped onto a second line.
    assert len(lines) == (3 + 1) + (3 + 10 + 1), output.getvalue()
    assert lines[4].rstrip().endswith("office-woman.mp4")
    assert lines[-1].rstrip().endswith("office-woman.mp4: 10 frames, 10 with a face")


def test_a_missing_path_is_one_error_line():
    assert_one_line_error(analyze("/nonexistent/photo.jpg"), "no such file")


def test_what_is_not_an_image_or_video_is_one_error_line(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg" * 50)
    assert_one_line_error(analyze(str(broken)), "cannot decode image")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01 definitely not a video " * 500)
    assert_one_line_error(analyze(str(corrupt)), "cannot decode video")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(analyze(str(tmp_path / "empty")), "folder has no images")

"""The Python API: ``fakeblock.Analyzer`` on photos, arrays and video, its options, and that it
gives what a ``fakeblock up`` replay writes."""

from __future__ import annotations

import subprocess
import sys
from itertools import islice

import cv2
import numpy as np
import pytest

import fakeblock
from fakeblock.api.analyzer_options import ANALYZER_OPTIONS
from fakeblock.common.errors import UserError
from fakeblock.common.model_io import EMOTIONS
from fakeblock.control.cli.up_options import UP_OPTIONS
from tests.helpers import MEDIA, read_results, shared_file
from tests.helpers import fakeblock as fakeblock_command

pytestmark = pytest.mark.timeout(300)
REPLAY_FRAMES = 60
REPLAY_TIMEOUT_S = 180
SCORE_TOLERANCE = 1e-4
# The int8 model's seven scores sum to 1 within its output's quantisation step.
SCORE_SUM_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def analyzer():
    with fakeblock.Analyzer() as made:
        yield made


@pytest.fixture(scope="module")
def justin():
    return shared_file(MEDIA / "justin.jpg")


def test_import_fakeblock_loads_neither_opencv_nor_the_model_runtime():
    code = ("import sys, fakeblock\nheavy = ('cv2', 'zmq', 'ai_edge_litert', 'tensorflow', 'numpy', 'pandas')\n"
            "print(sorted(name for name in heavy if name in sys.modules))\n"
            "print(fakeblock.Analyzer.__module__, 'cv2' in sys.modules)\n"
            "print(fakeblock.results_frame.__module__, 'pandas' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert completed.stdout.splitlines() == ["[]", "fakeblock.api.analyzer True", "fakeblock.api.results_table False"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        fakeblock.nothing  # noqa: B018 - the attribute access is the test


def test_a_photo_has_one_face_with_its_emotion_and_scores(analyzer, justin):
    (face,) = analyzer.analyze(justin)
    x, y, width, height = face.box
    assert 60 <= x <= 120 and 60 <= y <= 120 and 160 <= width <= 230 and width == height
    assert set(face.scores) == set(EMOTIONS)
    assert sum(face.scores.values()) == pytest.approx(1.0, abs=SCORE_SUM_TOLERANCE)
    assert face.emotion == max(face.scores, key=face.scores.get)
    assert face.track is None and face.scores_raw is None
    assert face.to_dict() == {"box": list(face.box), "emotion": face.emotion, "scores": dict(face.scores)}
    assert face.top_scores(2)[0] == (face.emotion, face.scores[face.emotion])


def test_an_array_gives_the_faces_of_its_file_in_colour_grey_or_bgra(analyzer, justin):
    pixels = cv2.imread(str(justin))
    expected = analyzer.analyze(str(justin))
    assert analyzer.analyze(pixels) == expected
    for converted in (cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), cv2.cvtColor(pixels, cv2.COLOR_BGR2BGRA)):
        (face,) = analyzer.analyze(converted)
        assert face.box == expected[0].box


@pytest.fixture(scope="module")
def photo():
    """The shipped astronaut photo, BGR as OpenCV reads it: one face, and colours that tell RGB from BGR."""
    return fakeblock.astronaut_photo()


def test_an_rgb_array_said_to_be_rgb_gives_the_faces_of_its_bgr_original(analyzer, photo):
    expected = analyzer.analyze(photo)
    assert len(expected) == 1
    rgb = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
    assert analyzer.analyze(rgb, color="rgb") == expected
    assert analyzer.analyze(photo, color="bgr") == expected
    # Taken for BGR, the same RGB array is another image: the order matters on this photo.
    assert analyzer.analyze(rgb) != expected
    bgra = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    assert analyzer.analyze(cv2.cvtColor(photo, cv2.COLOR_BGR2RGBA), color="rgb") == analyzer.analyze(bgra)
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    assert analyzer.analyze(grey, color="rgb") == analyzer.analyze(grey)


def test_color_leaves_an_image_file_as_it_is_read(analyzer, photo, tmp_path):
    path = tmp_path / "astronaut.png"  # lossless: the file's pixels are the array's
    cv2.imwrite(str(path), photo)
    assert analyzer.analyze(path, color="rgb") == analyzer.analyze(path) == analyzer.analyze(photo)


@pytest.mark.parametrize("color", ["RGB", "hsv", None])
def test_a_color_other_than_bgr_or_rgb_is_one_line_naming_both(analyzer, photo, color):
    with pytest.raises(fakeblock.OptionError) as caught:
        analyzer.analyze(photo, color=color)
    assert str(caught.value) == f"color must be one of bgr, rgb, not {color!r}"


def test_the_one_call_gives_what_the_analyzer_gives_for_an_array_a_file_and_a_video(analyzer, photo, tmp_path):
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), photo)
    faces = analyzer.analyze(photo)
    assert fakeblock.analyze(photo) == faces and fakeblock.analyze(path) == faces and len(faces) == 1
    assert fakeblock.analyze(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB), color="rgb") == faces
    frames = fakeblock.analyze("demo", max_frames=5)
    assert frames == list(analyzer.analyze_video("demo", max_frames=5))
    assert [frame.frame for frame in frames] == list(range(5)) and all(frame.faces for frame in frames)


def test_the_one_call_passes_its_options_on_and_closes_its_analyzer(photo, monkeypatch):
    closed = []
    monkeypatch.setattr(fakeblock.Analyzer, "close", lambda analyzer: closed.append(analyzer))
    # The photo's face is 95 px wide: with a larger minimum there is none.
    assert fakeblock.analyze(photo, min_size_px=120) == []
    (frame,) = fakeblock.analyze("demo", max_frames=1, tracking=False, stream="door")
    assert frame.stream == "door" and frame.faces[0].track is None
    assert len(closed) == 2
    with pytest.raises(TypeError, match="unknown option\\(s\\) min_size;"):
        fakeblock.analyze(photo, min_size=30)
    with pytest.raises(fakeblock.OptionError, match="^color must be one of bgr, rgb, not 'BGR'$"):
        fakeblock.analyze(photo, color="BGR")


@pytest.mark.parametrize("camera", [0, "1"])
def test_the_one_call_refuses_a_camera_without_a_frame_count_before_opening_it(camera, monkeypatch):
    monkeypatch.setattr(fakeblock.Analyzer, "__init__", lambda *_, **__: pytest.fail("the analyzer was made"))
    with pytest.raises(fakeblock.OptionError, match=f"^camera {camera} never ends: give max_frames"):
        fakeblock.analyze(camera)


def test_a_photo_without_faces_has_none(analyzer):
    assert analyzer.analyze(shared_file(MEDIA / "no-faces.jpg")) == []


def test_what_is_not_an_image_is_refused_clearly(analyzer, tmp_path):
    with pytest.raises(ValueError, match="uint8 image"):
        analyzer.analyze(np.zeros((20, 20, 3), np.float32))
    with pytest.raises(ValueError, match="shape \\(20, 20, 2\\)"):
        analyzer.analyze(np.zeros((20, 20, 2), np.uint8))
    with pytest.raises(fakeblock.ImageError, match="analyze_video"):
        analyzer.analyze(shared_file(MEDIA / "office-woman.mp4"))
    with pytest.raises(UserError, match="no such file"):
        analyzer.analyze(tmp_path / "missing.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all" * 20)
    with pytest.raises(UserError, match="cannot decode image"):
        analyzer.analyze(tmp_path / "broken.jpg")
    with pytest.raises(TypeError, match="numpy array or an image path"):
        analyzer.analyze(42)  # type: ignore[arg-type]


def test_options_are_fakeblock_ups_and_unknown_ones_are_refused_naming_the_valid_ones():
    assert {"scale_factor", "min_neighbors", "min_size_px", "detect_scale", "tracking", "model"} <= set(
        ANALYZER_OPTIONS)
    # Every analyzer option on up's command line has the same name there.
    assert {name for name, described in ANALYZER_OPTIONS.items() if described.option.command_line} <= set(UP_OPTIONS)
    with pytest.raises(TypeError, match="unknown option\\(s\\) min_size.*valid options: scale_factor, .*min_size_px"):
        fakeblock.Analyzer(min_size=30)
    with pytest.raises(TypeError, match="max_batch_size: batching between the processes"):
        fakeblock.Analyzer(max_batch_size=8)
    with pytest.raises(ValueError, match="min_size_px must be at least 8"):
        fakeblock.Analyzer(min_size_px=4)
    with pytest.raises(ValueError, match="detect_scale must be at most 1.0"):
        fakeblock.Analyzer(detect_scale=2)
    with pytest.raises(ValueError, match="tracking must be True or False, not 'off'"):
        fakeblock.Analyzer(tracking="off")
    with pytest.raises(ValueError, match="model file not found"):
        fakeblock.Analyzer(model="missing.tflite")
    settings = fakeblock.Analyzer(scale_factor=1.2, min_size_px=30, tracking=False).detect_config
    assert (settings.scale_factor, settings.min_size_px, settings.tracking) == (1.2, 30, False)


def test_a_video_gives_one_result_per_frame_and_one_track_for_its_one_face(analyzer):
    clip = shared_file(MEDIA / "office-woman.mp4")
    results = list(analyzer.analyze_video(clip, max_frames=REPLAY_FRAMES))
    assert [result.frame for result in results] == list(range(REPLAY_FRAMES))
    assert {result.stream for result in results} == {"office-woman"}
    assert results[30].time_s == pytest.approx(30 / 29.97, abs=0.01)
    assert all(len(result.faces) == 1 for result in results)
    assert {face.track for result in results for face in result.faces} == {1}
    face = results[-1].faces[0]
    assert face.scores_raw is not None and face.emotion == max(face.scores, key=face.scores.get)
    line = results[-1].to_dict()
    assert type(results[-1]).from_record(line) == results[-1] and set(line) == {"stream", "frame", "time_s", "faces"}


def test_stopping_early_closes_the_source_and_so_does_closing_the_analyzer():
    clip = shared_file(MEDIA / "office-woman.mp4")
    with fakeblock.Analyzer(tracking=False) as analyzer:
        frames = analyzer.analyze_video(clip)
        assert [result.frame for result in islice(frames, 5)] == list(range(5))
        assert "track" not in next(frames).to_dict()["faces"][0]
        frames.close()
        assert not analyzer._sources
        unread = analyzer.analyze_video(clip, stream="door")
        assert next(unread).stream == "door"
    assert analyzer.closed and not analyzer._sources
    with pytest.raises(RuntimeError, match="closed"):
        analyzer.analyze(np.zeros((50, 50), np.uint8))


def test_a_bad_source_or_frame_count_is_refused_when_asked_for(analyzer, tmp_path):
    with pytest.raises(UserError, match="no such file"):
        analyzer.analyze_video(tmp_path / "missing.mp4")
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x01 not a video " * 500)
    with pytest.raises(UserError, match="cannot decode video"):
        analyzer.analyze_video(tmp_path / "corrupt.mp4")
    with pytest.raises(ValueError, match="max_frames must be at least 1"):
        analyzer.analyze_video("demo", max_frames=0)


def replay(tmp_path, clip, *extra: str) -> list[dict]:
    """The results lines of a lossless ``fakeblock up`` replay of the clip's first frames."""
    results = tmp_path / "replay.jsonl"
    command = fakeblock_command("up", "--source", str(clip), "--display", "none", "--results", str(results),
                                "--max-frames", str(REPLAY_FRAMES), "--no-status", *extra)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return read_results(results)


def assert_same_lines(expected: list[dict], got: list[dict]) -> None:
    """The same frames, boxes, tracks and emotions; scores within the last rounding digit."""
    assert len(got) == len(expected)
    for wanted, line in zip(expected, got, strict=True):
        assert {key: line[key] for key in ("stream", "frame", "time_s")} == \
            {key: wanted[key] for key in ("stream", "frame", "time_s")}
        assert len(line["faces"]) == len(wanted["faces"]), line["frame"]
        for wanted_face, face in zip(wanted["faces"], line["faces"], strict=True):
            assert set(face) == set(wanted_face)
            assert (face["box"], face.get("track"), face["emotion"]) == \
                (wanted_face["box"], wanted_face.get("track"), wanted_face["emotion"]), line["frame"]
            for key in ("scores", "scores_raw"):
                if key in wanted_face:
                    assert face[key] == pytest.approx(wanted_face[key], abs=SCORE_TOLERANCE), (line["frame"], key)


@pytest.mark.slow
@pytest.mark.parametrize("tracking", [True, False], ids=["tracking", "full-frame"])
def test_analyze_video_gives_the_lines_of_a_fakeblock_up_replay(tmp_path, tracking):
    clip = shared_file(MEDIA / "office-woman.mp4")
    expected = replay(tmp_path, clip, "--tracking", "on" if tracking else "off")
    with fakeblock.Analyzer(tracking=tracking) as analyzer:
        got = [result.to_dict() for result in analyzer.analyze_video(clip, max_frames=REPLAY_FRAMES)]
    assert_same_lines(expected, got)
    assert sum(bool(line["faces"]) for line in got) >= REPLAY_FRAMES - 1

"""The pipeline accuracy benchmark runs from a checkout, and its gap is measured on the faces the pipeline found.

``--quick``: two 30-frame clips (large still faces in mp4v, medium moving ones in MJPEG
at quality 30) through ``fakeblock up`` twice and the Analyzer, about 40 s; the full
benchmark takes a quarter of an hour.  The dataset-crop accuracy is recomputed here, with
the runtime the classify stage uses, on the crops of exactly the face-frames the
benchmark says it found, and each of those must be a face of the clip's truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FER_CSV, shared_file
from tests.test_stress_benchmark import tables

REPOSITORY = Path(__file__).resolve().parent.parent
TIMEOUT_S = 240
QUICK_CLIPS = ["large-still", "codec-mjpg30"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[list[dict[str, dict[str, str]]], dict, Path]:
    """The printed tables, the ``--json`` figures and the clips' folder of one ``--quick`` run."""
    shared_file(FER_CSV)
    folder = tmp_path_factory.mktemp("pipeline-accuracy")
    report = folder / "figures.json"
    done = subprocess.run([sys.executable, str(REPOSITORY / "benchmarks" / "pipeline_accuracy.py"), "--quick",
                           "--data", str(FER_CSV), "--out-dir", str(folder / "clips"), "--json", str(report)],
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    return tables(done.stdout.splitlines()), json.loads(report.read_text()), folder / "clips"


@pytest.mark.slow
def test_the_table_has_a_row_per_clip_and_finds_large_still_faces(quick_run):
    (accuracy, side), figures, _clips = quick_run
    assert list(accuracy) == [*QUICK_CLIPS, "overall"] and list(side) == [*QUICK_CLIPS, "overall"]
    large = accuracy["large-still"]
    assert (large["codec"], large["quality"], large["size"], large["background"], large["motion"]) == \
        ("mp4v", "fixed", "150-200", "textured", "still")
    assert accuracy["codec-mjpg30"]["quality"] == "q30"
    assert float(large["recall"]) > 0.5
    for row in accuracy.values():
        assert 0 < int(row["found"]) <= int(row["faces"])
        for column in ("recall", "accuracy", "crop acc", "macro", "crop macro"):
            assert 0 < float(row[column]) <= 1, (row["clip"], column)
        assert float(row["gap"]) == pytest.approx(100 * (float(row["accuracy"]) - float(row["crop acc"])), abs=0.16)
        low, high = (float(end) for end in row["gap 95%"].split(".."))
        assert low <= float(row["gap"]) <= high
        assert 0 < int(row["people"]) <= int(row["found"]) and 0 < float(row["all crop acc"]) <= 1
    assert int(accuracy["overall"]["faces"]) == sum(int(accuracy[name]["faces"]) for name in QUICK_CLIPS)
    # The Analyzer runs the stages' own functions: the same faces and emotions as the replay.
    for row in side.values():
        assert float(row["api = up"]) >= 0.95
        assert 0 < float(row["tracked recall"]) <= 1
    assert figures["models"][0]["model"] == "shipped"
    assert figures["models"][0]["publictest_crop_accuracy"] == pytest.approx(0.683, abs=0.005)  # the card's figure


@pytest.mark.slow
def test_the_crop_accuracy_is_that_of_the_found_faces_own_crops(quick_run):
    from fakeblock.classify.model_runtime import EmotionModel
    from fakeblock.common.model_io import EMOTIONS
    from fakeblock.train.data import load_dataset

    _tables, figures, clips = quick_run
    faces, labels = load_dataset(FER_CSV).select("PublicTest")
    model = EmotionModel()
    for name, row in figures["models"][0]["clips"].items():
        truth = json.loads(next(clips.glob(f"{name}-*.truth.json")).read_text())["frames"]
        found = row["found_faces"]
        assert len(found) == row["found"] == round(row["recall"] * row["faces"])
        for face in found:  # a truth face of that frame, with its PublicTest label
            assert face["row"] in [placed["row"] for placed in truth[face["frame"]]]
            assert face["emotion"] == EMOTIONS[int(labels[face["row"]])]
        crops = model.scores(faces[[face["row"] for face in found]]).argmax(axis=1)
        crop_accuracy = sum(EMOTIONS[int(index)] == face["emotion"] for index, face in zip(crops, found, strict=True))
        assert row["crop_accuracy"] == pytest.approx(crop_accuracy / len(found))
        assert row["accuracy"] == pytest.approx(sum(face["answer"] == face["emotion"] for face in found) / len(found))
        assert row["gap_points"] == pytest.approx(100 * (row["accuracy"] - row["crop_accuracy"]))


def benchmark_module():
    """``benchmarks/pipeline_accuracy.py`` imported as a module (it is a script, not a package)."""
    import importlib.util

    path = REPOSITORY / "benchmarks" / "pipeline_accuracy.py"
    spec = importlib.util.spec_from_file_location("pipeline_accuracy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gap_interval_counts_people_not_frames():
    # Two people, ten frames each: one answered right only through the pipeline, one right
    # both ways. The gap is +50 points, but with two people it could as well be 0 or +100;
    # twenty independent frames would put it within about +-22 points.
    benchmark = benchmark_module()
    found = [benchmark.Found(frame, row, "happy", "happy") for row in (1, 2) for frame in range(10)]
    crops = {1: "sad", 2: "happy"}
    low, high = benchmark.gap_interval(found, crops)
    assert (low, high) == (0.0, 100.0)
    figures = benchmark.summary(found, [{"row": row, "emotion": "happy"} for row in (1, 2, 3) for _ in range(10)],
                                {**crops, 3: "happy"})
    assert figures["people"] == 2 and figures["gap_points"] == 50.0
    assert figures["crop_accuracy"] == 0.5 and figures["all_crop_accuracy"] == pytest.approx(2 / 3)
    assert benchmark.gap_interval([], crops) is None


def test_two_models_are_compared_on_the_same_face_frames_of_each_clip():
    benchmark = benchmark_module()
    # The same frame and row in two clips are two face-frames; the second model is right on
    # one person's four frames where the first was wrong, and wrong nowhere it was right.
    first = {clip: [benchmark.Found(0, 7, "sad", "happy"), benchmark.Found(1, 7, "sad", "happy"),
                    benchmark.Found(0, 8, "fear", "fear"), benchmark.Found(1, 8, "fear", "fear")]
             for clip in ("a", "b")}
    second = {clip: [face._replace(answer=face.emotion) for face in faces] for clip, faces in first.items()}
    change = benchmark.paired_difference(first, second)
    assert change["points"] == 50.0 and change["face_frames"] == 8 and change["people"] == 2
    assert change["low_points"] == 0.0 and change["high_points"] == 100.0
    assert benchmark.paired_difference(first, {"c": second["a"]}) is None  # no clip in common

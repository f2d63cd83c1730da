"""The smoothing benchmark scores each rule against the frame's own top score, on the faces it found.

Pure checks of its rules and counts (no sockets), and one ``--quick`` run from the checkout
(two 30-frame accuracy clips through ``fakeblock up``, about 30 s).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import FER_CSV, shared_file
from tests.test_stress_benchmark import tables

REPOSITORY = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


def benchmark_module():
    """``benchmarks/smoothing_rules.py`` imported as a module (it is a script, not a package)."""
    sys.path.insert(0, str(REPOSITORY / "benchmarks"))
    spec = importlib.util.spec_from_file_location("smoothing_rules", REPOSITORY / "benchmarks" / "smoothing_rules.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["smoothing_rules"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def scores(happy: float, sad: float) -> np.ndarray:
    """Seven scores in EMOTIONS order with ``happy`` and ``sad`` set and the rest sharing what is left."""
    rest = (1.0 - happy - sad) / 5
    return np.array([rest, rest, rest, happy, sad, rest, rest])


def test_hysteresis_holds_a_label_through_a_near_tie_and_follows_a_decisive_frame():
    benchmark = benchmark_module()
    label = benchmark.hysteresis()
    happy, sad = 3, 4
    frames = [scores(0.6, 0.2), scores(0.44, 0.47), scores(0.2, 0.7)]  # clear, near-tie, decisive
    labels = [label(benchmark.FaceFrame(frame, 1, values, None, None)) for frame, values in enumerate(frames)]
    assert labels == [happy, happy, sad]


def test_the_shipped_rule_is_the_display_smoother_and_averages_over_frames():
    benchmark = benchmark_module()
    label = benchmark.shipped()
    # Twelve happy frames, then one sad frame: the average still says happy; the raw top says sad.
    faces = [benchmark.FaceFrame(frame, 7, scores(0.6, 0.2), 3, 1) for frame in range(12)]
    faces.append(benchmark.FaceFrame(12, 7, scores(0.2, 0.6), 3, 1))
    assert [label(face) for face in faces][-1] == 3
    assert benchmark.raw()(faces[-1]) == 4


def test_label_changes_count_only_consecutive_frames_of_one_track():
    benchmark = benchmark_module()
    faces = [benchmark.FaceFrame(0, 1, scores(0.5, 0.1), None, None),
             benchmark.FaceFrame(1, 1, scores(0.1, 0.5), None, None),  # a change on track 1
             benchmark.FaceFrame(1, 2, scores(0.5, 0.1), None, None),  # track 2's first frame: no pair
             benchmark.FaceFrame(5, 1, scores(0.5, 0.1), None, None)]  # after a gap: no pair
    assert benchmark.label_changes_per_100(faces, [3, 4, 3, 3]) == 100.0


@pytest.mark.slow
def test_the_quick_run_scores_every_rule_on_both_clips(tmp_path):
    shared_file(FER_CSV)
    done = subprocess.run([sys.executable, str(REPOSITORY / "benchmarks" / "smoothing_rules.py"), "--quick",
                           "--data", str(FER_CSV), "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    (rows,) = tables(done.stdout.splitlines())
    assert {name.split("-30-")[0] for name in rows if name != "all clips"} == {"large-still", "codec-mjpg30"}
    for name, row in rows.items():
        assert 0.0 < float(row["raw e2e"]) <= 1.0, row
        for rule in ("shipped", "ema 3", "ema 24", "hysteresis", "near-top"):
            change = int(row[rule].split(" / ")[0])
            assert abs(change) <= int(row["faces"]), row
        if name != "all clips":
            low, high = (float(value) for value in row["shipped 95%"].split(".."))
            assert low <= high
    # A second run reuses each clip's tracked replay and prints the same table.
    again = subprocess.run([sys.executable, str(REPOSITORY / "benchmarks" / "smoothing_rules.py"), "--quick",
                            "--data", str(FER_CSV), "--out-dir", str(tmp_path)],
                           capture_output=True, text=True, timeout=TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    assert again.returncode == 0 and "replaying" not in again.stderr and again.stdout == done.stdout

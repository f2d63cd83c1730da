"""The tracking stress command runs from a checkout and its tables hold what the docs promise.

A one-second version of two generated clips (the full corpus takes a quarter of an hour);
the figures asserted are the ones tracking must never lose on them: no identity switch on
faces replaced in place, and the tracker's recall at least the full-frame scan's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import FER_CSV, shared_file

REPOSITORY = Path(__file__).resolve().parent.parent
TIMEOUT_S = 600


def tables(lines: list[str]) -> list[dict[str, dict[str, str]]]:
    """Every printed table (a header starting with "clip", rows to the next blank line), rows by clip."""
    found = []
    for start, header in enumerate(lines):
        if not header.startswith("clip "):
            continue
        # Columns are left-aligned: each starts where its name starts in the header.
        names, starts, position = [], [], 0
        for name in (piece.strip() for piece in header.split("  ") if piece.strip()):
            position = header.index(name, position)
            names.append(name)
            starts.append(position)
            position += len(name)
        rows = {}
        for line in lines[start + 1:]:
            if not line.strip():
                break
            cells = [line[begin:end].strip() for begin, end in zip(starts, [*starts[1:], None], strict=True)]
            rows[cells[0]] = dict(zip(names, cells, strict=True))
        found.append(rows)
    return found


@pytest.mark.slow
def test_the_stress_command_scores_the_corpus_and_the_pipeline(tmp_path):
    shared_file(FER_CSV)
    done = subprocess.run([sys.executable, str(REPOSITORY / "benchmarks" / "stress.py"), "--data", str(FER_CSV),
                           "--only", "replaced,enter_leave", "--seconds", "1", "--out-dir", str(tmp_path),
                           "--pipeline"], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    tracking, pipeline = tables(done.stdout.splitlines())
    assert set(tracking) == {"replaced.mp4", "enter_leave.mp4"}
    replaced = tracking["replaced.mp4"]
    assert replaced["switches"] == "0"
    assert float(replaced["recall"]) >= float(replaced["full"]) > 0.3
    finds = replaced["find"].split("/")
    assert float(finds[0]) <= 1 and int(finds[1]) <= 3
    assert set(pipeline) == {"replaced.mp4", "enter_leave.mp4"}
    for row in pipeline.values():
        assert int(row["frames"]) in (25, 30)  # one second of each clip, every frame replayed
        assert float(row["x loop"]) > 0
    # The montage shows faces from its first frame; in enter_leave's first second nobody has
    # walked in yet, so it has no accuracy to print.
    assert 0 < float(pipeline["replaced.mp4"]["e2e smoothed"]) <= 1
    assert 0 < float(pipeline["replaced.mp4"]["e2e raw"]) <= 1
    assert pipeline["enter_leave.mp4"]["e2e raw"] == "-" and tracking["enter_leave.mp4"]["find"] == "-"


def test_the_pan_and_zoom_clip_shows_most_of_its_people(tmp_path):
    """The camera sweeps a band of a scene four times its size: faces placed anywhere on it
    were mostly never in view, and the clip's accuracy rested on the two or three that were."""
    shared_file(FER_CSV)
    done = subprocess.run([sys.executable, str(REPOSITORY / "benchmarks" / "stress_corpus.py"), "--data",
                           str(FER_CSV), "--only", "pan_zoom", "--seconds", "1", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    frames = json.loads((tmp_path / "pan_zoom.mp4.truth.json").read_text())["frames"]
    seen = Counter(face["face"] for faces in frames for face in faces)
    assert len(seen) >= 8  # of the clip's 10 people (one may stay behind another)
    assert min(seen.values()) >= 5  # each for a sixth of the clip, not a glimpse

"""The stress corpus through the whole pipeline: ``fakeblock up`` against the single-process loop.

For each clip, in one run and interleaved round by round, as whole processes timed start
to exit: the lossless tracked replay (the default), the same with ``--tracking off`` (a
full-frame scan of every frame), and the single-process loop of :mod:`pipeline_vs_loop`
(``fakeblock.Analyzer`` with tracking off, frame after frame).  From the results files,
where the clip has truth: end-to-end accuracy of the smoothed emotion, of the frame's own
top score (``scores_raw``) and of the ``--tracking off`` replay.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import stress_scores as scores
from pipeline_vs_loop import run_loop, timed


@dataclass
class PipelineRow:
    """One clip's figures through the pipeline."""

    frames: int
    tracked_fps: float
    off_fps: float
    loop_fps: float
    e2e_smoothed: float | None
    e2e_raw: float | None
    e2e_off: float | None


def replay(video: Path, results: Path, extra: list[str]) -> dict:
    """One lossless ``fakeblock up`` replay of ``video`` to ``results``, timed start to exit."""
    command = [sys.executable, "-m", "fakeblock", "up", "--source", str(video), "--display", "none",
               "--results", str(results), "--no-status", *extra]
    wall_s, cpu_s, _ = timed(command)
    return {"frames": sum(1 for _ in results.open()), "wall_s": wall_s, "cpu_s": cpu_s}


def read_frames(results: Path, frames: int) -> list[list[dict]]:
    """Each frame's faces from a results file, in frame order (a frame without a line: no faces)."""
    faces: list[list[dict]] = [[] for _ in range(frames)]
    for line in results.open():
        record = json.loads(line)
        if record["frame"] < frames:
            faces[record["frame"]] = record["faces"]
    return faces


def frame_rate(runs: list[dict]) -> float:
    """Frames per wall second over every round."""
    return sum(run["frames"] for run in runs) / sum(run["wall_s"] for run in runs)


def pipeline_row(video: Path, rounds: int = 1) -> PipelineRow:
    """Replay ``video`` tracked and untracked and run the loop on it, ``rounds`` times interleaved."""
    sides: dict[str, list[dict]] = {"tracked": [], "off": [], "loop": []}
    with tempfile.TemporaryDirectory() as folder:
        tracked, untracked = Path(folder) / "tracked.jsonl", Path(folder) / "off.jsonl"
        for _ in range(rounds):
            sides["tracked"].append(replay(video, tracked, []))
            sides["off"].append(replay(video, untracked, ["--tracking", "off"]))
            sides["loop"].append(run_loop(str(video)))
        frames = sides["loop"][-1]["frames"]
        truth_file = Path(f"{video}.truth.json")
        accuracy: list[float | None] = [None, None, None]
        if truth_file.exists():
            truth = json.loads(truth_file.read_text())["frames"]
            ours, theirs = read_frames(tracked, len(truth)), read_frames(untracked, len(truth))
            accuracy = [scores.e2e_accuracy(ours, truth), scores.e2e_accuracy(ours, truth, "scores_raw"),
                        scores.e2e_accuracy(theirs, truth)]
    return PipelineRow(frames, frame_rate(sides["tracked"]), frame_rate(sides["off"]), frame_rate(sides["loop"]),
                       *accuracy)

"""Pipeline against a single-process loop, in one run, on the same clip.

The loop is ``fakeblock.Analyzer`` with tracking off: in one process it reads each frame
(``capture.core.open_source``) and calls the very same functions the pipeline stages call
(``detect.core.detect`` and ``classify.runtime.EmotionModel.scores``) with OpenCV and
LiteRT thread settings left at their defaults.  The pipeline is ``fakeblock up`` in
lossless mode writing results.  Both run as child processes so wall time and CPU time
(user + system, every process included) are measured the same way; the script prints
both frame rates, their ratio, and CPU milliseconds per frame.  Ratios are what to read:
absolute numbers depend on what else the machine is doing.

    python benchmarks/pipeline_vs_loop.py [--video clip.mp4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOGGER = logging.getLogger("benchmark")
HERE = Path(__file__).resolve().parent


def loop_main(video: str) -> None:
    """The single-process loop (run in a child): read, detect, classify, frame after frame.

    It is ``fakeblock.Analyzer`` with tracking off: the full-frame scan of every frame,
    the reference the pipeline is measured against.
    """
    from fakeblock import Analyzer

    frames = faces = 0
    with Analyzer(tracking=False) as analyzer:
        for result in analyzer.analyze_video(video):
            frames, faces = frames + 1, faces + len(result.faces)
    print(json.dumps({"frames": frames, "faces": faces}))


def timed(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run a command; return its wall seconds, CPU seconds of it and all its descendants, and the result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started_s = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall_s = time.monotonic() - started_s
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
    return wall_s, cpu_s, completed


def run_loop(video: str) -> dict:
    """Measure the single-process loop."""
    wall_s, cpu_s, completed = timed([sys.executable, __file__, "--loop-only", video])
    frames = json.loads(completed.stdout.strip().splitlines()[-1])["frames"]
    return {"frames": frames, "wall_s": wall_s, "cpu_s": cpu_s}


def run_pipeline(video: str, detect_workers: int, extra: list[str]) -> dict:
    """Measure ``fakeblock up`` on the clip, lossless, results to a temporary file."""
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "results.jsonl"
        command = [sys.executable, "-m", "fakeblock", "up", "--source", video, "--display", "none",
                   "--results", str(results), "--no-status", "--detect-workers", str(detect_workers), *extra]
        wall_s, cpu_s, _ = timed(command)
        frames = sum(1 for _ in results.open())
    return {"frames": frames, "wall_s": wall_s, "cpu_s": cpu_s}


def describe(name: str, measured: dict) -> str:
    """One line: frames/s and CPU ms per frame."""
    fps = measured["frames"] / measured["wall_s"]
    cpu_ms = 1000 * measured["cpu_s"] / measured["frames"]
    return (f"{name:<28} {measured['frames']:>5} frames {measured['wall_s']:7.2f} s {fps:7.1f} fps "
            f"{cpu_ms:7.1f} CPU ms/frame")


def main() -> None:
    """Build the clip if needed, run each side ``--rounds`` times interleaved, print the ratios."""
    parser = argparse.ArgumentParser(description="fakeblock pipeline vs single-process loop")
    parser.add_argument("--video", default=None, help="clip to replay (default: build one from PublicTest faces)")
    parser.add_argument("--frames", type=int, default=600, help="length of the clip to build")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--detect-workers", type=int, default=2)
    parser.add_argument("--loop-only", default=None, help=argparse.SUPPRESS)
    arguments, extra = parser.parse_known_args()
    if arguments.loop_only:
        loop_main(arguments.loop_only)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    video = arguments.video or os.path.join(tempfile.gettempdir(), f"fakeblock-benchmark-{arguments.frames}.mp4")
    if not os.path.exists(video):
        subprocess.run([sys.executable, str(HERE / "make_video.py"), "--out", video, "--frames",
                        str(arguments.frames)], check=True)
    loops, pipelines = [], []
    for round_number in range(arguments.rounds):
        loops.append(run_loop(video))
        LOGGER.info(describe(f"loop (round {round_number + 1})", loops[-1]))
        pipelines.append(run_pipeline(video, arguments.detect_workers, extra))
        LOGGER.info(describe(f"pipeline (round {round_number + 1})", pipelines[-1]))
    loop = {key: sum(run[key] for run in loops) for key in ("frames", "wall_s", "cpu_s")}
    pipeline = {key: sum(run[key] for run in pipelines) for key in ("frames", "wall_s", "cpu_s")}
    speedup = (pipeline["frames"] / pipeline["wall_s"]) / (loop["frames"] / loop["wall_s"])
    cpu_ratio = (pipeline["cpu_s"] / pipeline["frames"]) / (loop["cpu_s"] / loop["frames"])
    print(describe("single-process loop", loop))
    print(describe(f"pipeline ({arguments.detect_workers} detect workers)", pipeline))
    print(f"frame-rate ratio pipeline/loop: {speedup:.2f}x (target >= 1.5x)")
    print(f"CPU per frame pipeline/loop:    {cpu_ratio:.2f}x (target <= 1.15x)")


if __name__ == "__main__":
    main()

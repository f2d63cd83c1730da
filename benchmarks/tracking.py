"""Tracking against full-frame detection and a single-process loop, on two clips, in one run.

For each clip the script times, as whole processes interleaved round by round:

- ``fakeblock up`` replaying the clip losslessly with tracking (the default),
- the same with ``--detect-workers 2`` (one stream: the second worker idles, and must not
  slow the first down; its results must be the same lines),
- the same replay with ``--tracking off`` (a full-frame scan of every frame),
- the single-process loop of :mod:`pipeline_vs_loop` (full-frame Haar and the classifier
  per frame), and, when the ``fer`` package is installed, ``FER().detect_emotions`` per frame;

and prints frames/s and CPU ms per frame of each, the frame-rate ratios, and the quality
of the tracked replay: the share of the full-frame replay's boxes it found (IoU >= 0.3)
and its extra boxes per frame; on the PublicTest clip, which has ground truth, recall,
false positives per frame, emotion accuracy on found faces and track ids per face; on
``office-woman.mp4``, how often the top emotion changes between frames.

    python benchmarks/tracking.py [--rounds 1] [--clips fer,real]

Clips: ``fer`` is ``make_video.py``'s 640x480 montage of PublicTest faces (with its ground
truth), ``real`` the 1280x720 montage of ``make_real_clip.py``.  Ratios are what to read.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from fakeblock.common.tensorflow_setup import quiet_tensorflow

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_vs_loop import describe, run_loop, timed  # noqa: E402
from tracking_quality import label_changes, quality_lines  # noqa: E402

LOGGER = logging.getLogger("benchmark")
HERE = Path(__file__).resolve().parent
MEDIA = HERE.parents[1] / "shared" / "media"
CLIP_MAKERS = {"fer": ("make_video.py", "fakeblock-tracking-fer480.mp4", ["--frames", "480"]),
               "real": ("make_real_clip.py", "fakeblock-tracking-real720.mp4", [])}


def clip_path(name: str) -> Path:
    """The clip, built on first use in the temporary folder."""
    script, file_name, extra = CLIP_MAKERS[name]
    path = Path(tempfile.gettempdir()) / file_name
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / script), "--out", str(path), *extra], check=True)
    return path


def replay(video: Path, results: Path, extra: list[str]) -> dict:
    """One lossless ``fakeblock up`` replay to ``results``, timed whole."""
    command = [sys.executable, "-m", "fakeblock", "up", "--source", str(video), "--display", "none",
               "--results", str(results), "--no-status", *extra]
    wall_s, cpu_s, _ = timed(command)
    frames = sum(1 for _ in results.open())
    return {"frames": frames, "wall_s": wall_s, "cpu_s": cpu_s}


def fer_available() -> bool:
    """True when the ``fer`` package imports in this environment."""
    probe = subprocess.run([sys.executable, "-c", "import fer"], capture_output=True, check=False)
    return probe.returncode == 0


def run_fer(video: Path) -> dict:
    """``fer``'s own per-frame loop, timed whole."""
    code = ("import cv2, json, sys\nfrom fer import FER\ndetector = FER()\ncapture = cv2.VideoCapture(sys.argv[1])\n"
            "frames = 0\nwhile True:\n    ok, frame = capture.read()\n    if not ok: break\n"
            "    detector.detect_emotions(frame)\n    frames += 1\nprint(json.dumps({'frames': frames}))\n")
    wall_s, cpu_s, completed = timed([sys.executable, "-c", code, str(video)])
    frames = json.loads(completed.stdout.strip().splitlines()[-1])["frames"]
    return {"frames": frames, "wall_s": wall_s, "cpu_s": cpu_s}


def total(runs: list[dict]) -> dict:
    """Frames, wall and CPU seconds summed over rounds."""
    return {key: sum(run[key] for run in runs) for key in ("frames", "wall_s", "cpu_s")}


def fps(measured: dict) -> float:
    """Frames per wall second."""
    return measured["frames"] / measured["wall_s"]


def benchmark_clip(name: str, rounds: int, folder: Path, with_fer: bool) -> None:
    """Time every side on one clip and print speed ratios and quality."""
    video = clip_path(name)
    sides: dict[str, list[dict]] = {"tracked replay": [], "tracked, --detect-workers 2": [],
                                    "--tracking off replay": [], "single-process loop": []}
    if with_fer:
        sides["fer per-frame loop"] = []
    tracked, untracked = folder / f"{name}-tracked.jsonl", folder / f"{name}-off.jsonl"
    two_workers = folder / f"{name}-two-workers.jsonl"
    for round_number in range(rounds):
        sides["tracked replay"].append(replay(video, tracked, []))
        sides["tracked, --detect-workers 2"].append(replay(video, two_workers, ["--detect-workers", "2"]))
        sides["--tracking off replay"].append(replay(video, untracked, ["--tracking", "off"]))
        sides["single-process loop"].append(run_loop(str(video)))
        if with_fer:
            sides["fer per-frame loop"].append(run_fer(video))
        for side, runs in sides.items():
            LOGGER.info(describe(f"{name} {side} ({round_number + 1})", runs[-1]))
    print(f"\n== {name}: {video}")
    totals = {side: total(runs) for side, runs in sides.items()}
    for side, measured in totals.items():
        print(describe(side, measured))
    for side in totals:
        if side != "tracked replay":
            print(f"frame-rate ratio tracked / {side}: {fps(totals['tracked replay']) / fps(totals[side]):.2f}x")
    same = tracked.read_bytes() == two_workers.read_bytes()
    print(f"--detect-workers 2 gives {'the same lines as' if same else 'OTHER LINES THAN'} one worker")
    for line in quality_lines(tracked, untracked, Path(f"{video}.truth.json")):
        print(line)


def main() -> None:
    """Run the chosen clips, then the label-change check on office-woman.mp4."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--clips", default="fer,real", help="comma list of fer, real")
    parser.add_argument("--no-fer", action="store_true", help="skip the fer package even when installed")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with_fer = not arguments.no_fer and fer_available()
    if not with_fer:
        print("fer is not installed here: its loop is skipped")
    with tempfile.TemporaryDirectory() as folder:
        for name in arguments.clips.split(","):
            benchmark_clip(name.strip(), arguments.rounds, Path(folder), with_fer)
        office = MEDIA / "office-woman.mp4"
        if office.exists():
            tracked, untracked = Path(folder) / "office-tracked.jsonl", Path(folder) / "office-off.jsonl"
            replay(office, tracked, [])
            replay(office, untracked, ["--tracking", "off"])
            print(f"\n== office-woman.mp4: top emotion changes between frames: tracked {label_changes(tracked)}, "
                  f"tracked raw scores {label_changes(tracked, 'scores_raw')}, "
                  f"--tracking off {label_changes(untracked)}")
            print(f"faces: tracked {sum(len(r['faces']) for r in map(json.loads, tracked.open()))}, "
                  f"--tracking off {sum(len(r['faces']) for r in map(json.loads, untracked.open()))}")


if __name__ == "__main__":
    quiet_tensorflow()
    main()

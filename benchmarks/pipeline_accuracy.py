"""Emotion accuracy through the whole pipeline against the same faces' dataset crops, per clip and model.

Each clip of :mod:`accuracy_clips` (PublicTest faces only, never Training) is replayed by
``fakeblock up`` (lossless, ``--tracking off``: every frame classified on its own), run
through ``fakeblock.Analyzer`` in this process, and (unless ``--no-tracked``) replayed by
``fakeblock up`` with tracking on, its default.  A truth face is found when a result box
matches it one to one at IoU >= 0.3 (:func:`stress_scores.assign`); its answer is the top
of the frame's own scores (``scores_raw``, else ``scores``).  Per clip and overall, for the
``--tracking off`` replay:

- **recall**: found truth face-frames over truth face-frames;
- **accuracy** and **macro** (the mean of the seven classes' recalls, over the classes
  found) on the found face-frames;
- **crop acc** and **crop macro**: the same model on the original 48x48 PublicTest crops of
  exactly those face-frames (``EmotionModel.scores``), and the **gap**, accuracy minus
  crop accuracy in points: what detection, cropping, scaling and the codec cost a face
  that was found, with its 95 % interval (**gap 95%**);
- **people**: how many different PublicTest faces those face-frames show. A face stays on
  screen for 12-24 frames, so a clip of 240 frames shows only about 40 people, and its
  frames are not independent samples: the interval is a bootstrap over people (each drawn
  with all of its frames), and at about 40 people it is several points wide;
- **all crop acc**: the model on the crops of every truth face-frame, found or not. Against
  **crop acc** it shows which faces the cascade finds: a clip's found faces may be easier
  or harder for the model than its faces overall, and both differ from the 3,589-face
  PublicTest accuracy by sampling alone.

A second table gives recall and accuracy of the Analyzer, the share of frames in which it
gave the same boxes and emotions as the replay (``api = up``), recall and accuracy of the
tracked replay (its raw scores and its smoothed ``emotion``), and frames per second of each
run, start to exit.  One block per model (``--model A --model B`` or ``--models A,B``;
default the shipped one)::

    python benchmarks/pipeline_accuracy.py [--model m.tflite ...] [--no-tracked] [--json out.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from accuracy_clips import CLIPS, ENCODERS, QUICK_CLIPS, SIZES_PX, build_clips  # noqa: E402
from make_video import DEFAULT_DATA, truth_path  # noqa: E402
from stress import print_table  # noqa: E402
from stress_pipeline import read_frames, replay  # noqa: E402
from stress_scores import assign, top_emotion  # noqa: E402

from fakeblock.common.model_io import EMOTIONS  # noqa: E402
from fakeblock.train.class_metrics import summarise  # noqa: E402

LOGGER = logging.getLogger("pipeline_accuracy")
FRAMES, QUICK_FRAMES = 240, 30
COLUMNS = ("clip", "codec", "quality", "size", "background", "motion", "face psnr", "faces", "found", "people",
           "recall", "accuracy", "crop acc", "gap", "gap 95%", "all crop acc", "macro", "crop macro")
BOOTSTRAP_DRAWS = 2000
SIDE_COLUMNS = ("clip", "api recall", "api accuracy", "api = up", "tracked recall", "tracked raw", "smoothed",
                "off fps", "api fps", "tracked fps")


class Found(NamedTuple):
    """A found truth face-frame: its frame, PublicTest row and label, and the answer the run gave."""

    frame: int
    row: int
    emotion: str
    answer: str


def found_faces(results: list[list[dict]], truth: list[list[dict]], key: str = "scores_raw") -> list[Found]:
    """Every truth face-frame ``results`` found (one box, one face), with the run's answer by ``key``."""
    found = []
    for frame, (ours, expected) in enumerate(zip(results, truth, strict=True)):
        for face, hit in zip(expected, assign(expected, ours), strict=True):
            if hit is not None:
                found.append(Found(frame, int(face["row"]), face["emotion"], top_emotion(hit, key)))
    return found


def macro_recall(pairs: Iterable[tuple[str, str]]) -> float | None:
    """The mean over the classes present of the share of each class's faces answered right (None: no faces)."""
    indices = np.array([(EMOTIONS.index(label), EMOTIONS.index(answer)) for label, answer in pairs], np.int64)
    return summarise(indices[:, 0], indices[:, 1])["macro_recall"] if len(indices) else None


def share(hits: int, total: int) -> float | None:
    """``hits / total``, None for nothing to count."""
    return hits / total if total else None


def over_people(rows: list[int], differences: list[float], draws: int = BOOTSTRAP_DRAWS, seed: int = 0
                ) -> tuple[float, float, float]:
    """The mean of per-face-frame ``differences`` in points, and its 95 % interval over people.

    ``rows[i]`` is the PublicTest row (the person) of face-frame ``i``. Frames of one face are
    nearly copies of each other, so the interval resamples people, each with all of its
    frames: resampling frames would claim far more certainty than a few dozen people give.
    """
    people, person = np.unique(np.asarray(rows), return_inverse=True)
    frames = np.bincount(person, minlength=len(people)).astype(float)
    difference = np.bincount(person, weights=np.asarray(differences, float), minlength=len(people))
    counts = np.random.default_rng(seed).multinomial(len(people), np.full(len(people), 1 / len(people)), size=draws)
    low, high = np.percentile(100 * (counts @ difference) / (counts @ frames), [2.5, 97.5])
    return float(100 * difference.sum() / frames.sum()), float(low), float(high)


def gap_interval(found: list[Found], crops: dict[int, str]) -> tuple[float, float] | None:
    """The 95 % interval of the gap in points, over people (see ``over_people``); None without found faces."""
    if not found:
        return None
    _gap, low, high = over_people([face.row for face in found],
                                  [(face.emotion == face.answer) - (face.emotion == crops[face.row]) for face in found])
    return low, high


def paired_difference(first: dict[str, list[Found]], second: dict[str, list[Found]]) -> dict[str, float | int] | None:
    """How much more often ``second`` is right than ``first`` on the face-frames both found, in points.

    Both map clip names to found faces of the same clips (detection does not depend on the
    model, so with tracking off they hold the same face-frames). The 95 % interval is over
    people (see ``over_people``). None when they share no face-frame.
    """
    answers = {(clip, face.frame, face.row): face.answer for clip, faces in first.items() for face in faces}
    pairs = [(face, answers[(clip, face.frame, face.row)]) for clip, faces in second.items() for face in faces
             if (clip, face.frame, face.row) in answers]
    if not pairs:
        return None
    points, low, high = over_people([face.row for face, _ in pairs],
                                    [(face.answer == face.emotion) - (first_answer == face.emotion)
                                     for face, first_answer in pairs])
    return {"points": points, "low_points": low, "high_points": high, "face_frames": len(pairs),
            "people": len({face.row for face, _ in pairs})}


def found_by_clip(scored: dict) -> dict[str, list[Found]]:
    """A model's found faces (``--tracking off``) per clip, from its figures."""
    return {name: [Found(**face) for face in figures["found_faces"]] for name, figures in scored["clips"].items()}


def summary(found: list[Found], truth: Iterable[dict], crops: dict[int, str]) -> dict[str, float | int | None]:
    """Recall, accuracy and macro on the found faces, the same for their dataset crops, and the gap in points.

    ``truth`` is every truth face-frame, found or not.
    """
    truth = list(truth)
    accuracy = share(sum(face.emotion == face.answer for face in found), len(found))
    crop_accuracy = share(sum(face.emotion == crops[face.row] for face in found), len(found))
    gap = None if accuracy is None or crop_accuracy is None else 100 * (accuracy - crop_accuracy)
    interval = gap_interval(found, crops)
    return {"faces": len(truth), "found": len(found), "people": len({face.row for face in found}),
            "recall": share(len(found), len(truth)),
            "accuracy": accuracy, "crop_accuracy": crop_accuracy, "gap_points": gap,
            "gap_low_points": interval[0] if interval else None, "gap_high_points": interval[1] if interval else None,
            "all_crop_accuracy": share(sum(face["emotion"] == crops[int(face["row"])] for face in truth), len(truth)),
            "macro": macro_recall((face.emotion, face.answer) for face in found),
            "crop_macro": macro_recall((face.emotion, crops[face.row]) for face in found)}


def analyzer_run(video: Path, model: Path | None) -> tuple[list[list[dict]], float]:
    """Each frame's faces from ``fakeblock.Analyzer`` with tracking off, in this process, and the wall seconds."""
    from fakeblock import Analyzer

    options = {"tracking": False, **({"model": str(model)} if model else {})}
    started_s = time.monotonic()
    with Analyzer(**options) as analyzer:
        frames = [result.to_dict()["faces"] for result in analyzer.analyze_video(video)]
    return frames, time.monotonic() - started_s


def same_frames(first: list[list[dict]], second: list[list[dict]]) -> float:
    """The share of frames whose faces have the same boxes and emotions in both runs."""
    def answers(faces: list[dict]) -> list[tuple]:
        return sorted((tuple(face["box"]), face["emotion"]) for face in faces)

    return sum(answers(ours) == answers(theirs) for ours, theirs in zip(first, second, strict=True)) / len(first)


def clip_runs(video: Path, model: Path | None, tracked: bool, frames: int) -> dict:
    """The clip through ``fakeblock up --tracking off``, the Analyzer and (``tracked``) the tracked replay."""
    extra = ["--model", str(model)] if model else []
    runs: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, flags in (("off", ["--tracking", "off"]), *((("tracked", []),) if tracked else ())):
            results = Path(folder) / f"{name}.jsonl"
            timing = replay(video, results, [*flags, *extra])
            if timing["frames"] != frames:
                raise SystemExit(f"{video}: fakeblock up wrote {timing['frames']} of {frames} frames")
            runs[name] = (read_frames(results, frames), timing["wall_s"])
    runs["api"] = analyzer_run(video, model)
    return runs


def clip_figures(runs: dict, truth: list[list[dict]], crops: dict[int, str]) -> tuple[dict, dict[str, list[Found]]]:
    """A clip's figures (the ``off`` summary and the side columns), and its found faces by run."""
    faces = [face for frame in truth for face in frame]
    found = {"off": found_faces(runs["off"][0], truth), "api": found_faces(runs["api"][0], truth)}
    if "tracked" in runs:
        found["tracked"] = found_faces(runs["tracked"][0], truth)
        found["smoothed"] = found_faces(runs["tracked"][0], truth, "emotion")
    side = {f"{name}_{figure}": value for name, run_found in found.items() if name != "off"
            for figure, value in summary(run_found, faces, crops).items() if figure in ("recall", "accuracy")}
    side["api_same_frames"] = same_frames(runs["off"][0], runs["api"][0])
    side.update({f"{name}_fps": len(truth) / wall_s for name, (_frames, wall_s) in runs.items()})
    return {**summary(found["off"], faces, crops), **side}, found


def crop_answers(model: Path | None, faces: np.ndarray) -> dict[int, str]:
    """The model's top emotion on each PublicTest row's own 48x48 crop, by row."""
    from fakeblock.classify.model_runtime import EmotionModel

    scores = EmotionModel(model).scores(faces)
    return {row: EMOTIONS[int(index)] for row, index in enumerate(scores.argmax(axis=1))}


def score_model(model: Path | None, clips: dict[str, Path], faces: np.ndarray, labels: np.ndarray,
                tracked: bool) -> dict:
    """Every clip's figures with one model, the overall ones (face-frames pooled over the clips),
    and its accuracy on every PublicTest crop (the number its card states)."""
    truths = {name: json.loads(truth_path(path).read_text()) for name, path in clips.items()}
    crops = crop_answers(model, faces)
    dataset_accuracy = float(np.mean([crops[row] == EMOTIONS[int(label)] for row, label in enumerate(labels)]))
    rows, pooled, pooled_faces, same, frames = {}, {}, [], 0.0, 0
    for name, path in clips.items():
        LOGGER.info("%s: %s", model or "shipped model", name)
        truth = truths[name]["frames"]
        rows[name], found = clip_figures(clip_runs(path, model, tracked, len(truth)), truth, crops)
        rows[name]["face_psnr_db"] = truths[name]["face_psnr_db"]
        rows[name]["found_faces"] = [face._asdict() for face in found["off"]]  # for checking the figures
        pooled_faces += [face for frame in truth for face in frame]
        same, frames = same + rows[name]["api_same_frames"] * len(truth), frames + len(truth)
        for run, run_found in found.items():
            pooled.setdefault(run, []).extend(run_found)
    overall = {**summary(pooled["off"], pooled_faces, crops), "api_same_frames": same / frames}
    for run in [run for run in pooled if run != "off"]:
        figures = summary(pooled[run], pooled_faces, crops)
        overall.update({f"{run}_recall": figures["recall"], f"{run}_accuracy": figures["accuracy"]})
    return {"model": str(model) if model else "shipped", "clips": rows, "overall": overall,
            "publictest_crop_accuracy": dataset_accuracy}


def number(value: float | int | None, digits: int = 3, signed: bool = False) -> str:
    """A table cell: the value to ``digits`` decimals (``+`` for a positive ``signed`` one), ``-`` for None."""
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def table_rows(scored: dict) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The two tables' rows of one model's figures: per clip, then ``overall``."""
    main, side = [], []
    for name, figures in [*scored["clips"].items(), ("overall", scored["overall"])]:
        content, encoder = CLIPS[name] if name in CLIPS else (None, None)
        described = {}
        if content and encoder:
            low_px, high_px = SIZES_PX[content.size]
            described = {"codec": ENCODERS[encoder].codec, "quality": ENCODERS[encoder].quality_name(),
                         "size": f"{low_px}-{high_px - 1}", "background": content.background,
                         "motion": content.motion}
        psnr = figures.get("face_psnr_db")
        main.append({"clip": name, **{column: described.get(column, "-") for column in COLUMNS[1:6]},
                     "face psnr": "lossless" if name in CLIPS and psnr is None else number(psnr, 1),
                     "faces": str(figures["faces"]), "found": str(figures["found"]),
                     "people": str(figures["people"]),
                     "recall": number(figures["recall"]), "accuracy": number(figures["accuracy"]),
                     "crop acc": number(figures["crop_accuracy"]), "gap": number(figures["gap_points"], 1, True),
                     "gap 95%": f"{number(figures['gap_low_points'], 1, True)}.."
                                f"{number(figures['gap_high_points'], 1, True)}",
                     "all crop acc": number(figures["all_crop_accuracy"]),
                     "macro": number(figures["macro"]), "crop macro": number(figures["crop_macro"])})
        side.append({"clip": name, "api recall": number(figures.get("api_recall")),
                     "api accuracy": number(figures.get("api_accuracy")),
                     "api = up": number(figures.get("api_same_frames")),
                     "tracked recall": number(figures.get("tracked_recall")),
                     "tracked raw": number(figures.get("tracked_accuracy")),
                     "smoothed": number(figures.get("smoothed_accuracy")),
                     **{f"{run} fps": number(figures.get(f"{run}_fps"), 1) for run in ("off", "api", "tracked")}})
    return main, side


def model_paths(models: list[str] | None, listed: str | None) -> list[Path | None]:
    """The models to compare: each ``--model``, then each of ``--models``; None (the shipped one) without either."""
    paths = [*(models or []), *(name for name in (listed or "").split(",") if name)]
    for path in paths:
        if not Path(path).is_file():
            raise SystemExit(f"{path}: no such model file")
    return [Path(path) for path in paths] or [None]


def arguments_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fer2013.csv(.gz) with a PublicTest split")
    parser.add_argument("--out-dir", type=Path, default=Path(tempfile.gettempdir()) / "fakeblock-pipeline-accuracy",
                        help="where the clips are built (and reused)")
    parser.add_argument("--model", action="append", help="a .tflite or .keras model; repeat to compare")
    parser.add_argument("--models", help="a comma list of models to compare")
    parser.add_argument("--only", default="", help="comma list of clips: " + ", ".join(CLIPS))
    parser.add_argument("--frames", type=int, default=None, help=f"frames per clip (default {FRAMES}, "
                        f"--quick {QUICK_FRAMES})")
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK_CLIPS)} tiny clips: "
                        + ", ".join(QUICK_CLIPS))
    parser.add_argument("--no-tracked", action="store_true", help="skip the replay with tracking on")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    return parser


def main() -> None:
    """Build the clips if needed, run them through each model, print the tables."""
    arguments = arguments_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started_s = time.monotonic()
    models = model_paths(arguments.model, arguments.models)
    names = [name for name in arguments.only.split(",") if name] or list(QUICK_CLIPS if arguments.quick else CLIPS)
    unknown = sorted(set(names) - set(CLIPS))
    if unknown:
        raise SystemExit(f"unknown clip(s) {', '.join(unknown)}; choose from {', '.join(CLIPS)}")
    if not arguments.data.exists():
        raise SystemExit(f"{arguments.data}: no such file (FER2013 with a PublicTest split)")
    from fakeblock.train.data import load_dataset

    faces, labels = load_dataset(arguments.data).select("PublicTest")
    frames = arguments.frames or (QUICK_FRAMES if arguments.quick else FRAMES)
    clips = build_clips(faces, labels, arguments.out_dir, names, frames, arguments.seed)
    scored = [score_model(model, clips, faces, labels, not arguments.no_tracked) for model in models]
    for index, figures in enumerate(scored):
        main_rows, side_rows = table_rows(figures)
        print(f"{chr(10) if index else ''}model: {figures['model']} (all {len(faces):,} PublicTest crops: "
              f"{figures['publictest_crop_accuracy']:.3f})")
        print_table(main_rows, COLUMNS)
        print()
        print_table(side_rows, SIDE_COLUMNS)
    for figures in scored[1:]:
        change = paired_difference(found_by_clip(scored[0]), found_by_clip(figures))
        figures["against_first"] = change
        if change:
            print(f"\n{figures['model']} against {scored[0]['model']}, right on found faces: "
                  f"{change['points']:+.1f} points (95 %: {change['low_points']:+.1f}..{change['high_points']:+.1f}; "
                  f"{change['face_frames']} face-frames of {change['people']} people)")
    wall_s = time.monotonic() - started_s
    print(f"\nwall time: {wall_s:.0f} s")
    if arguments.json:
        arguments.json.write_text(json.dumps({"frames": frames, "seed": arguments.seed, "wall_s": wall_s,
                                              "models": scored}, indent=1))


if __name__ == "__main__":
    main()

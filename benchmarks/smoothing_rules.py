"""What smoothing a track's emotion gains or costs, rule by rule, on every clip with truth.

One tracked ``fakeblock up`` replay per clip (the stress corpus's clips with truth and the
accuracy benchmark's ten, built from PublicTest faces) gives each found face its track id
and its frame's own scores (``scores_raw``).  Each rule below then labels those faces
again, offline and causally (a rule sees a track's frames up to the current one), and is
scored against the truth:

- ``raw``: the frame's own top score (no smoothing);
- ``shipped``: the display's :class:`~fakeblock.display.smoothing.TrackSmoother`, as it runs;
- ``ema 3`` and ``ema 24``: the same average with a shorter or longer time constant (frames);
- ``hysteresis``: the frame's top score, except that the label shown before stays while
  the frame scores it within ``HYSTERESIS`` of its top (a near-tie does not flip it);
- ``near-top``: the track's average picks, but only among the classes the frame scores
  within ``HYSTERESIS`` of its top (a decisive frame speaks for itself).

Per clip: the truth's face-frames, raw end-to-end accuracy (a face not found counts as
wrong) and, per rule, its change in right face-frames against raw and how often its label
changes (per 100 consecutive frames of a track).  For the shipped rule, the change in
points with its 95 % interval over people (a face's frames are near copies: the interval
resamples people, see :func:`pipeline_accuracy.over_people`).

    python benchmarks/smoothing_rules.py [--out-dir /tmp/fakeblock-smoothing] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from accuracy_clips import CLIPS as ACCURACY_CLIPS  # noqa: E402
from accuracy_clips import QUICK_CLIPS, build_clips  # noqa: E402
from make_video import DEFAULT_DATA, truth_path  # noqa: E402
from pipeline_accuracy import over_people  # noqa: E402
from stress import print_table  # noqa: E402
from stress_corpus import build_corpus  # noqa: E402
from stress_pipeline import read_frames, replay  # noqa: E402
from stress_scores import assign  # noqa: E402

from fakeblock.common import wire  # noqa: E402
from fakeblock.common.model_io import EMOTIONS  # noqa: E402
from fakeblock.display.smoothing import TIME_CONSTANT_FRAMES, TrackSmoother  # noqa: E402

LOGGER = logging.getLogger("smoothing_rules")
# Two classes closer than this in one frame are a near-tie: on a face moving 1-3 px a frame,
# the largest change of any class's score from one frame to the next is 0.015-0.02 at the
# median and 0.06-0.08 at the 90th percentile (measured on the accuracy clips).
HYSTERESIS = 0.05
STRESS_CLIPS = ("replaced", "cuts", "small_faces", "pan_zoom", "enter_leave", "crowd")
FRAMES, QUICK_FRAMES = 240, 30


@dataclass(frozen=True)
class FaceFrame:
    """A found face in one frame: its track, its frame's own scores, and the truth it matched (or None)."""

    frame: int
    track: int | None
    scores: np.ndarray
    truth: int | None  # index in EMOTIONS of the matched truth face's emotion
    person: int | None


Rule = Callable[[], Callable[[FaceFrame], int]]  # a fresh labeller per clip: face-frame -> class index


def averaged(smoother: TrackSmoother, face: FaceFrame) -> np.ndarray:
    """``face``'s scores after ``smoother`` (the display's own), fed one face at a time in frame order."""
    if face.track is None:
        return face.scores
    info = wire.FrameInfo(stream="clip", frame_number=face.frame, position_s=0.0, captured_s=0.0)
    result = smoother.smooth(wire.Result(info, ((0, 0, 1, 1),), (tuple(face.scores),), (face.track,)))
    return np.asarray(result.scores[0])


def average(time_constant_frames: float = TIME_CONSTANT_FRAMES) -> Rule:
    """The top of the track's exponential moving average (the shipped rule at its own time constant)."""
    def make() -> Callable[[FaceFrame], int]:
        smoother = TrackSmoother(time_constant_frames)
        return lambda face: int(np.argmax(averaged(smoother, face)))
    return make


def raw() -> Callable[[FaceFrame], int]:
    """The frame's own top score."""
    return lambda face: int(np.argmax(face.scores))


def hysteresis() -> Callable[[FaceFrame], int]:
    """The frame's top class, unless the label shown before scores within ``HYSTERESIS`` of it."""
    shown: dict[int | None, int] = {}

    def label(face: FaceFrame) -> int:
        top = int(np.argmax(face.scores))
        before = shown.get(face.track)
        if before is not None and face.scores[before] >= face.scores[top] - HYSTERESIS:
            top = before
        shown[face.track] = top
        return top
    return label


def near_top() -> Callable[[FaceFrame], int]:
    """The shipped average's top among the classes the frame scores within ``HYSTERESIS`` of its own top."""
    smoother = TrackSmoother()

    def label(face: FaceFrame) -> int:
        near = face.scores >= face.scores.max() - HYSTERESIS
        return int(np.argmax(np.where(near, averaged(smoother, face), -1.0)))
    return label


shipped = average()

RULES: dict[str, Rule] = {"shipped": shipped, "ema 3": average(3.0), "ema 24": average(24.0),
                          "hysteresis": hysteresis, "near-top": near_top}


def face_frames(results: list[list[dict]], truth: list[list[dict]]) -> list[FaceFrame]:
    """Every found face in frame order, each with the truth face it is (one box, one face)."""
    faces = []
    for frame, (ours, expected) in enumerate(zip(results, truth, strict=True)):
        matched = {id(hit): face for face, hit in zip(expected, assign(expected, ours), strict=True) if hit is not None}
        for face in ours:
            truth_face = matched.get(id(face))
            person = None if truth_face is None else int(truth_face.get("row", truth_face["face"]))
            faces.append(FaceFrame(frame, face.get("track"), np.array([face["scores_raw"][name] for name in EMOTIONS]),
                                   None if truth_face is None else EMOTIONS.index(truth_face["emotion"]), person))
    return faces


def label_changes_per_100(faces: list[FaceFrame], labels: list[int]) -> float:
    """How often a track's label differs from its label in the frame before, per 100 such frame pairs."""
    last: dict[int, tuple[int, int]] = {}
    changes = pairs = 0
    for face, label in zip(faces, labels, strict=True):
        before = last.get(face.track) if face.track is not None else None
        if before is not None and before[0] == face.frame - 1:
            changes, pairs = changes + (label != before[1]), pairs + 1
        if face.track is not None:
            last[face.track] = (face.frame, label)
    return 100.0 * changes / pairs if pairs else 0.0


@dataclass
class Tally:
    """Right face-frames and label changes, summed over clips, per rule."""

    truth_faces: int = 0
    raw_right: int = 0
    gained: dict[str, int] = field(default_factory=dict)

    def add(self, rule_name: str, change: int) -> None:
        """Count ``change`` right face-frames against raw for ``rule_name``."""
        self.gained[rule_name] = self.gained.get(rule_name, 0) + change

    def row(self) -> dict[str, str]:
        """The table's last row: every clip together."""
        row = {"clip": "all clips", "faces": str(self.truth_faces),
               "raw e2e": f"{self.raw_right / max(self.truth_faces, 1):.3f}", "raw flips": "", "shipped 95%": ""}
        row.update({name: f"{change:+d}" for name, change in self.gained.items()})
        return row


def clip_row(name: str, faces: list[FaceFrame], truth_faces: int, tally: Tally) -> dict[str, str]:
    """One clip's row: raw accuracy, and each rule's change in right face-frames and label changes."""
    raw_labels = [raw()(face) for face in faces]
    raw_right = [face.truth is not None and label == face.truth for face, label in zip(faces, raw_labels, strict=True)]
    row = {"clip": name, "faces": str(truth_faces), "raw e2e": f"{sum(raw_right) / truth_faces:.3f}",
           "raw flips": f"{label_changes_per_100(faces, raw_labels):.1f}"}
    tally.truth_faces, tally.raw_right = tally.truth_faces + truth_faces, tally.raw_right + sum(raw_right)
    for rule_name, rule in RULES.items():
        labeller = rule()
        labels = [labeller(face) for face in faces]
        right = [face.truth is not None and label == face.truth for face, label in zip(faces, labels, strict=True)]
        row[rule_name] = f"{sum(right) - sum(raw_right):+d} / {label_changes_per_100(faces, labels):.1f}"
        tally.add(rule_name, sum(right) - sum(raw_right))
        if rule_name == "shipped":
            matched = [index for index, face in enumerate(faces) if face.truth is not None]
            if matched:
                _mean, low, high = over_people([faces[index].person for index in matched],
                                               [float(right[index]) - float(raw_right[index]) for index in matched])
                share = len(matched) / truth_faces  # the interval is over found faces; scale it to all truth faces
                row["shipped 95%"] = f"{low * share:+.1f}..{high * share:+.1f}"
            else:
                row["shipped 95%"] = "-"
    return row


def tracked_results(clip: Path) -> Path:
    """The clip's tracked replay (made once, kept beside it)."""
    results = clip.with_name(clip.name + ".tracked.jsonl")
    if not results.exists() or results.stat().st_mtime < clip.stat().st_mtime:
        LOGGER.info("replaying %s", clip.name)
        partial = results.with_name(results.name + ".partial")
        replay(clip, partial, [])
        partial.replace(results)
    return results


def main() -> None:
    """Build the clips if needed, replay each once, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fer2013.csv(.gz) with a PublicTest split")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/fakeblock-smoothing"))
    parser.add_argument("--quick", action="store_true", help=f"only the accuracy clips {', '.join(QUICK_CLIPS)}, "
                        f"{QUICK_FRAMES} frames each")
    parser.add_argument("--seed", type=int, default=5, help="the accuracy clips' seed (the accuracy benchmark's)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not arguments.data.exists():
        raise SystemExit(f"{arguments.data}: no such file (FER2013 with a PublicTest split)")
    from fakeblock.train.data import load_dataset

    faces, labels = load_dataset(arguments.data).select("PublicTest")
    clips = []
    if not arguments.quick:
        clips += build_corpus(arguments.data, arguments.out_dir / "stress", only=list(STRESS_CLIPS))
    names = list(QUICK_CLIPS if arguments.quick else ACCURACY_CLIPS)
    clips += build_clips(faces, labels, arguments.out_dir / "accuracy", names,
                         QUICK_FRAMES if arguments.quick else FRAMES, arguments.seed).values()
    rows, tally = [], Tally()
    for clip in clips:
        truth = json.loads(truth_path(clip).read_text())["frames"]
        found = face_frames(read_frames(tracked_results(clip), len(truth)), truth)
        rows.append(clip_row(clip.name, found, sum(len(frame) for frame in truth), tally))
    rows.append(tally.row())
    print("each rule: right face-frames against raw / label changes per 100 frames of a track")
    print_table(rows, ("clip", "faces", "raw e2e", "raw flips", *RULES, "shipped 95%"))


if __name__ == "__main__":
    main()

"""Score tracking on the stress corpus and the shared clips: one table, one row per clip.

For each clip the tracker and the full-frame scan run on the same decoded frames, in this
process on one thread (:mod:`stress_detection`: the boxes and ids the detect stage gives),
and :mod:`stress_scores` compares them:

- recall against the truth, tracked and full-frame (generated clips), and the share of
  the full-frame boxes and of its stable boxes the tracker found;
- frames to first find (median / maximum) of the full-frame scan's faces held 3 frames
  where the picture changed, and the maximum where it did not (the coverage cycle's bound);
- ids per face and identity switches (one id on two people), against the truth, or on the
  shared clips (one person each) against the full-frame scan's held face;
- detect CPU of the full-frame scan over the tracker's, in the same run.

Usage::

    python benchmarks/stress.py [--out-dir /tmp/fakeblock-stress] [--only replaced,cuts]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stress_scores as scores  # noqa: E402
from make_video import DEFAULT_DATA  # noqa: E402
from stress_corpus import build_corpus  # noqa: E402
from stress_detection import PictureChanges, cached_full_frame, grey_frames, tracked  # noqa: E402

from fakeblock.common.config import DetectConfig  # noqa: E402

LOGGER = logging.getLogger("stress")
MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
SHARED_CLIPS = ("office-woman.mp4", "phone-woman.mp4")
# A face never found within its run counts as this many frames in the maximum.
NEVER = 99
COLUMNS = ("clip", "recall", "full", "of full", "stable", "find", "still", "ids/face", "switches", "CPU x")


def score_clip(video: Path, config: DetectConfig) -> dict[str, str]:
    """One row of the table for ``video``."""
    frames = grey_frames(video)
    reference = cached_full_frame(video, frames, config)
    run = tracked(frames, config)
    truth_file = Path(f"{video}.truth.json")
    has_truth = truth_file.exists()
    truth = json.loads(truth_file.read_text())["frames"] if has_truth else scores.one_person_truth(reference.frames)
    # First finds count the full-frame scan's faces: with truth, those that are faces.
    held = [[face for face in faces if scores.match(face["box"], expected)] for faces, expected in
            zip(reference.frames, truth, strict=False)] if has_truth else reference.frames
    finds = scores.first_finds(run.frames, held, PictureChanges(frames))
    changed_median, changed_max = scores.find_summary(finds["changed"], NEVER)
    _still_median, still_max = scores.find_summary(finds["still"], NEVER)
    ids = scores.ids_per_face(run.frames, truth)
    return {
        "clip": video.name,
        "recall": f"{scores.recall(run.frames, truth):.3f}" if has_truth else "-",
        "full": f"{scores.recall(reference.frames, truth):.3f}" if has_truth else "-",
        "of full": f"{scores.recall(run.frames, reference.frames):.3f}",
        "stable": f"{scores.stable_recall(run.frames, reference.frames):.3f}",
        "find": f"{changed_median:g}/{changed_max}",
        "still": f"{still_max}" if finds["still"] else "-",
        "ids/face": " ".join(f"{count}:{people}" for count, people in ids.items()),
        "switches": str(scores.identity_switches(run.frames, truth)),
        "CPU x": f"{reference.cpu_s / max(run.cpu_s, 1e-9):.1f}",
    }


def print_table(rows: list[dict[str, str]]) -> None:
    """The rows as an aligned text table."""
    widths = {column: max(len(column), *(len(row[column]) for row in rows)) for column in COLUMNS}
    print("  ".join(column.ljust(widths[column]) for column in COLUMNS))
    for row in rows:
        print("  ".join(row[column].ljust(widths[column]) for column in COLUMNS))


def main() -> None:
    """Build the corpus if needed, score every clip, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fer2013.csv(.gz) with a PublicTest split")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/fakeblock-stress"))
    parser.add_argument("--only", default="", help="comma list of clip names (files without extension)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    clips = build_corpus(arguments.data, arguments.out_dir) if arguments.data.exists() else []
    clips += [MEDIA / name for name in SHARED_CLIPS if (MEDIA / name).exists()]
    wanted = {name for name in arguments.only.split(",") if name}
    rows = []
    for clip in clips:
        if not wanted or clip.stem in wanted:
            LOGGER.info("scoring %s", clip.name)
            rows.append(score_clip(clip, DetectConfig()))
    print_table(rows)


if __name__ == "__main__":
    main()

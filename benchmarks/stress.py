"""Score tracking on the stress corpus and the shared clips: one table, one row per clip.

For each clip the tracker and the full-frame scan run on the same decoded frames, in this
process on one thread (:mod:`stress_detection`: the boxes and ids the detect stage gives),
and :mod:`stress_scores` compares them:

- recall against the truth, tracked and full-frame (generated clips), and the share of
  the full-frame boxes and of its stable boxes the tracker found;
- frames to first find (median / maximum) of the full-frame scan's faces held 3 frames
  where the picture changed, and the maximum where it did not (the coverage cycle's bound);
- ids per face and identity switches (one id on two people), against the truth, or on the
  shared clips (one person each) against the full-frame scan's held face (in the montage
  of them, ids per face count per shot: phone-woman's cells cut at its loop point);
- detect CPU of the full-frame scan over the tracker's, in the same run.

With ``--pipeline``, a second table (:mod:`stress_pipeline`): each clip replayed by the
whole ``fakeblock up``, tracked and with ``--tracking off``, and run through the
single-process loop, interleaved; frames/s of each and the ratios, and where the clip has
truth the end-to-end accuracy (a face not found counts as wrong) of the smoothed emotion,
of the frame's own top score, and of the ``--tracking off`` replay.

Usage::

    python benchmarks/stress.py [--out-dir /tmp/fakeblock-stress] [--only replaced,cuts] [--pipeline]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stress_scores as scores  # noqa: E402
from make_real_clip import cell_cuts, make_clip  # noqa: E402
from make_video import DEFAULT_DATA  # noqa: E402
from stress_corpus import CLIPS, build_corpus  # noqa: E402
from stress_detection import PictureChanges, cached_full_frame, grey_frames, tracked  # noqa: E402
from stress_pipeline import pipeline_row  # noqa: E402

from fakeblock.common.config import DetectConfig  # noqa: E402

LOGGER = logging.getLogger("stress")
MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
# The shared clips, each one person, and (real_720p.mp4) the four-cell montage of them
# that make_real_clip.py builds: real faces at 1280x720, with phone-woman's loop cuts.
SHARED_CLIPS = ("office-woman.mp4", "phone-woman.mp4")
# A face never found within its run counts as this many frames in the maximum.
NEVER = 99
COLUMNS = ("clip", "recall", "full", "of full", "stable", "find", "still", "ids/face", "switches", "CPU x")
PIPELINE_COLUMNS = ("clip", "frames", "e2e smoothed", "e2e raw", "e2e off", "tracked fps", "off fps", "loop fps",
                    "x off", "x loop")


def person_cells(video: Path, width_px: int, height_px: int) -> list[tuple[int, int, int, int]]:
    """Where each person of a clip without truth is: the montage's four cells, else the whole frame."""
    if video.name == "real_720p.mp4":
        half_width, half_height = width_px // 2, height_px // 2
        return [(x, y, half_width, half_height) for y in (0, half_height) for x in (0, half_width)]
    return [(0, 0, width_px, height_px)]


def by_shot(truth: list[list[dict]], cuts: dict[int, list[int]]) -> list[list[dict]]:
    """The montage's truth with one person per cell *and shot*: at its loop point a cell
    shows its person afresh, in another place and pose, as after any cut, so a new id
    there is right; the ids per face then count the ids a shot's person got."""
    return [[{**face, "face": 100 * face["face"] + sum(cut <= number for cut in cuts[face["face"]])}
             for face in faces] for number, faces in enumerate(truth)]


def score_clip(video: Path, config: DetectConfig) -> dict[str, str]:
    """One row of the table for ``video``."""
    frames = grey_frames(video)
    reference = cached_full_frame(video, frames, config)
    run = tracked(frames, config)
    truth_file = Path(f"{video}.truth.json")
    has_truth = truth_file.exists()
    if has_truth:
        truth = json.loads(truth_file.read_text())["frames"]
    else:
        truth = scores.held_truth(reference.frames, person_cells(video, frames[0].shape[1], frames[0].shape[0]))
    # First finds count the full-frame scan's faces: with truth, those that are faces.
    held = [[face for face in faces if scores.match(face["box"], expected)] for faces, expected in
            zip(reference.frames, truth, strict=False)] if has_truth else reference.frames
    finds = scores.first_finds(run.frames, held, PictureChanges(frames))
    changed_median, changed_max = scores.find_summary(finds["changed"], NEVER)
    _still_median, still_max = scores.find_summary(finds["still"], NEVER)
    ids = scores.ids_per_face(run.frames, by_shot(truth, cell_cuts(MEDIA, len(frames)))
                              if video.name == "real_720p.mp4" else truth)
    return {
        "clip": video.name,
        "recall": f"{scores.recall(run.frames, truth):.3f}" if has_truth else "-",
        "full": f"{scores.recall(reference.frames, truth):.3f}" if has_truth else "-",
        "of full": f"{scores.recall(run.frames, reference.frames):.3f}",
        "stable": f"{scores.stable_recall(run.frames, reference.frames):.3f}",
        "find": f"{changed_median:g}/{changed_max}" if finds["changed"] else "-",
        "still": f"{still_max}" if finds["still"] else "-",
        "ids/face": " ".join(f"{count}:{people}" for count, people in ids.items()),
        "switches": str(scores.identity_switches(run.frames, truth)),
        "CPU x": f"{reference.cpu_s / max(run.cpu_s, 1e-9):.1f}",
    }


def pipeline_cells(video: Path, rounds: int) -> dict[str, str]:
    """One row of the pipeline table for ``video``."""
    row = pipeline_row(video, rounds)

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    return {"clip": video.name, "frames": str(row.frames), "e2e smoothed": share(row.e2e_smoothed),
            "e2e raw": share(row.e2e_raw), "e2e off": share(row.e2e_off), "tracked fps": f"{row.tracked_fps:.1f}",
            "off fps": f"{row.off_fps:.1f}", "loop fps": f"{row.loop_fps:.1f}",
            "x off": f"{row.tracked_fps / row.off_fps:.2f}", "x loop": f"{row.tracked_fps / row.loop_fps:.2f}"}


def print_table(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> None:
    """The rows as an aligned text table."""
    widths = {column: max(len(column), *(len(row[column]) for row in rows)) for column in columns}
    print("  ".join(column.ljust(widths[column]) for column in columns).rstrip())
    for row in rows:
        print("  ".join(row[column].ljust(widths[column]) for column in columns).rstrip())


def main() -> None:
    """Build the corpus if needed, score every clip, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fer2013.csv(.gz) with a PublicTest split")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/fakeblock-stress"))
    parser.add_argument("--only", default="", help="comma list of clip names: " + ", ".join(
        [*CLIPS, *(Path(name).stem for name in SHARED_CLIPS), "real_720p"]))
    parser.add_argument("--pipeline", action="store_true",
                        help="also replay each clip through fakeblock up and the single-process loop")
    parser.add_argument("--rounds", type=int, default=1, help="pipeline rounds per clip, interleaved")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of every generated clip (default: each its own; a new --out-dir then)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    wanted = [name for name in arguments.only.split(",") if name]
    generated = [name for name in CLIPS if not wanted or name in wanted]
    clips = []
    if generated and arguments.data.exists():
        clips += build_corpus(arguments.data, arguments.out_dir, seconds=arguments.seconds, only=generated)
    clips += [MEDIA / name for name in SHARED_CLIPS
              if (MEDIA / name).exists() and (not wanted or Path(name).stem in wanted)]
    if all((MEDIA / name).exists() for name in SHARED_CLIPS) and (not wanted or "real_720p" in wanted):
        montage = arguments.out_dir / "real_720p.mp4"  # the shared clips tiled at 1280x720
        if not montage.exists():
            arguments.out_dir.mkdir(parents=True, exist_ok=True)
            make_clip(MEDIA, montage)
        clips.append(montage)
    if not clips:
        raise SystemExit(f"no clips: {arguments.data} and {MEDIA} hold none of those asked for")
    rows = []
    for clip in clips:
        LOGGER.info("scoring %s", clip.name)
        rows.append(score_clip(clip, DetectConfig()))
    print_table(rows)
    if arguments.pipeline:
        pipeline_rows = []
        for clip in clips:
            LOGGER.info("replaying %s", clip.name)
            pipeline_rows.append(pipeline_cells(clip, arguments.rounds))
        print()
        print_table(pipeline_rows, PIPELINE_COLUMNS)


if __name__ == "__main__":
    main()

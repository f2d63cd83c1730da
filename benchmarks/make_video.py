"""Build the benchmark clip: 640x480, 1-3 FER2013 PublicTest faces per frame on a textured background.

Faces are scaled up to 150-180 px and drift slowly, so the Haar cascade finds most of
them as it would in real footage.  Usage::

    python benchmarks/make_video.py --out /tmp/fer-faces.mp4 --frames 600
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from fakeblock.common.model_io import EMOTIONS
from fakeblock.train.data import load_dataset

LOGGER = logging.getLogger("make_video")
WIDTH_PX, HEIGHT_PX, FPS = 640, 480, 30.0
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
# Columns where faces may sit, so up to three fit side by side without overlapping.
SLOTS_X_PX = (20, 235, 450)


def textured_background(generator: np.random.Generator) -> np.ndarray:
    """Smooth coloured noise with a few stripes: texture for the cascade to reject."""
    noise = generator.random((HEIGHT_PX // 8, WIDTH_PX // 8, 3)) * 255
    background = cv2.resize(noise.astype(np.uint8), (WIDTH_PX, HEIGHT_PX), interpolation=cv2.INTER_CUBIC)
    for x in range(0, WIDTH_PX, 40):
        cv2.line(background, (x, 0), (x + 120, HEIGHT_PX), (90, 110, 130), 2)
    return background


def face_tile(face: np.ndarray, size_px: int) -> np.ndarray:
    """A grey 48x48 face scaled up to ``size_px`` as BGR."""
    scaled = cv2.resize(face, (size_px, size_px), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(scaled, cv2.COLOR_GRAY2BGR)


def plan_faces(generator: np.random.Generator, face_count: int, frames: int, segment_frames: int) -> list:
    """For each segment of frames: which faces, where, how large, drifting how."""
    segments = []
    for _ in range(0, frames, segment_frames):
        count = int(generator.integers(1, 4))
        slots = generator.choice(len(SLOTS_X_PX), size=count, replace=False)
        segments.append([{
            "face": int(generator.integers(0, face_count)),
            "x_px": SLOTS_X_PX[slot], "y_px": int(generator.integers(40, 250)),
            "size_px": int(generator.integers(150, 181)),
            "drift_px": generator.uniform(-0.6, 0.6, size=2),
        } for slot in slots])
    return segments


def render(background: np.ndarray, faces: np.ndarray, placements: list, step: int) -> tuple[np.ndarray, list]:
    """One frame: the background with each placed face at its drifted position, and where each went."""
    frame = background.copy()
    boxes = []
    for placement in placements:
        tile = face_tile(faces[placement["face"]], placement["size_px"])
        x_px = int(np.clip(placement["x_px"] + placement["drift_px"][0] * step, 0, WIDTH_PX - tile.shape[1]))
        y_px = int(np.clip(placement["y_px"] + placement["drift_px"][1] * step, 0, HEIGHT_PX - tile.shape[0]))
        frame[y_px:y_px + tile.shape[0], x_px:x_px + tile.shape[1]] = tile
        boxes.append([x_px, y_px, tile.shape[1], tile.shape[0]])
    return frame, boxes


def truth_path(video: Path) -> Path:
    """Where the clip's ground truth is written: beside it, ``clip.mp4.truth.json``."""
    return Path(f"{video}.truth.json")


def make_video(data: Path, out: Path, frames: int, seed: int, segment_frames: int = 45) -> None:
    """Write the clip (mp4v) to ``out`` and its ground truth beside it (:func:`truth_path`).

    The truth lists, per frame, each face's tile box, its emotion label and which placed
    face it is (``face``: the same number for as long as that face is on screen).
    """
    faces, labels = load_dataset(data).select("PublicTest")
    generator = np.random.default_rng(seed)
    background = textured_background(generator)
    segments = plan_faces(generator, len(faces), frames, segment_frames)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH_PX, HEIGHT_PX))
    if not writer.isOpened():
        raise SystemExit(f"cannot write {out}")
    truth = []
    for index in range(frames):
        segment = index // segment_frames
        image, boxes = render(background, faces, segments[segment], index % segment_frames)
        writer.write(image)
        truth.append([{"box": box, "emotion": EMOTIONS[int(labels[placement["face"]])],
                       "face": segment * len(SLOTS_X_PX) + slot}
                      for slot, (box, placement) in enumerate(zip(boxes, segments[segment], strict=True))])
    writer.release()
    truth_path(out).write_text(json.dumps({"frames": truth}))
    LOGGER.info("wrote %d frames to %s", frames, out)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fer2013.csv(.gz) with a PublicTest split")
    parser.add_argument("--out", type=Path, default=Path("/tmp/fakeblock-benchmark.mp4"))
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    make_video(arguments.data, arguments.out, arguments.frames, arguments.seed)


if __name__ == "__main__":
    main()

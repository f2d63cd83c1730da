"""Does looking at a still face in several ways lift the emotion accuracy? FER2013 PublicTest.

A track holds the same face for many frames.  When the face moves or its expression
changes, the frames differ and averaging their scores steadies the label.  When it holds
still, every frame shows the classifier the same crop; the only way a track could still
add information is to classify each frame on another *view* (shifted, zoomed, mirrored)
and average the views, which is test-time augmentation spread over time.  This script
measures what that average is worth on the 3,589 PublicTest faces, with the shipped
model: the accuracy of each view alone and of the averages, all in one run::

    python benchmarks/multiview.py [--data fer2013.csv.gz] [--model m.tflite]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from fakeblock.classify.model_runtime import EmotionModel
from fakeblock.common.model_io import FACE_SIZE_PX

LOGGER = logging.getLogger("multiview")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
# (zoom, shift right px, shift down px, mirrored) on the 48x48 face.
VIEWS = {
    "as is": (1.0, 0, 0, False),
    "mirrored": (1.0, 0, 0, True),
    "zoom in 8 %": (1.08, 0, 0, False),
    "zoom out 8 %": (0.92, 0, 0, False),
    "2 px right": (1.0, 2, 0, False),
    "2 px left": (1.0, -2, 0, False),
    "2 px down": (1.0, 0, 2, False),
    "2 px up": (1.0, 0, -2, False),
}


def view(face: np.ndarray, zoom: float, shift_x_px: int, shift_y_px: int, mirrored: bool) -> np.ndarray:
    """The 48x48 face zoomed about its centre, shifted and mirrored, edges repeated."""
    centre = (FACE_SIZE_PX - 1) / 2.0
    matrix = np.float32([[zoom, 0, (1 - zoom) * centre + shift_x_px], [0, zoom, (1 - zoom) * centre + shift_y_px]])
    moved = cv2.warpAffine(face, matrix, (FACE_SIZE_PX, FACE_SIZE_PX), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(moved[:, ::-1]) if mirrored else moved


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of faces whose top score is their label."""
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def main() -> None:
    """Score every view of every PublicTest face and print the accuracies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fer2013.csv(.gz) with a PublicTest split")
    parser.add_argument("--model", type=Path, default=None, help="a .tflite or .keras model (default: the shipped one)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not arguments.data.exists():
        raise SystemExit(f"error: {arguments.data} not found (FER2013 with its PublicTest split)")
    from fakeblock.train.data import load_dataset

    faces, labels = load_dataset(arguments.data).select("PublicTest")
    labels = np.asarray(labels)
    model = EmotionModel(arguments.model, threads=2)
    scores = {}
    for name, settings in VIEWS.items():
        scores[name] = model.scores(np.stack([view(face, *settings) for face in faces]))
        LOGGER.info("scored view %s", name)
    single = accuracy(scores["as is"], labels)
    print(f"PublicTest, {len(labels)} faces")
    for name, view_scores in scores.items():
        print(f"  {name:<14} alone: {accuracy(view_scores, labels):.4f}")
    for title, names in (("as is + mirrored", ["as is", "mirrored"]), ("all 8 views", list(VIEWS))):
        averaged = accuracy(sum(scores[name] for name in names), labels)
        print(f"  average of {title:<18}: {averaged:.4f} ({100 * (averaged - single):+.1f} points over one view)")


if __name__ == "__main__":
    main()

"""Measure where the Haar cascade boxes FER2013 faces shown at video sizes; write the training table.

Each face is scaled to a random side in ``FACE_SIDE_RANGE_PX`` (log-uniform) and put on a
plain or textured patch twice its size; the pipeline's own face finder runs on it with the
default settings, and the box that overlaps the tile best (IoU at least 0.3) is recorded
as (side / tile side, centre offsets / tile side). Usage::

    python benchmarks/measure_haar_boxes.py --data ../shared/data/fer2013/fer2013.csv.gz

writes ``train/haar_boxes.json`` (see ``fakeblock.train.haar_boxes``). Run it again after
changing the cascade or its default settings.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from fakeblock.common.config import DetectConfig
from fakeblock.detect.boxes import iou
from fakeblock.detect.core import CASCADE_FILE, find_faces, load_cascade
from fakeblock.train.data import load_dataset
from fakeblock.train.haar_boxes import TABLE_PATH, BoxTable
from fakeblock.train.pipeline_view_settings import FACE_SIDE_RANGE_PX

LOGGER = logging.getLogger("measure_haar_boxes")
MIN_MATCH_IOU = 0.3
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


def render_scene(face: np.ndarray, side_px: int, generator: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """``face`` scaled to ``side_px`` on a plain or textured patch twice its size, and its tile box."""
    size_px = 2 * side_px
    if generator.random() < 0.5:
        scene = np.full((size_px, size_px), int(generator.integers(30, 226)), np.uint8)
    else:
        noise = (generator.random((size_px // 8 + 1, size_px // 8 + 1)) * 255).astype(np.uint8)
        scene = cv2.resize(noise, (size_px, size_px), interpolation=cv2.INTER_CUBIC)
    x_px, y_px = (int(value) for value in generator.integers(0, size_px - side_px + 1, size=2))
    scene[y_px:y_px + side_px, x_px:x_px + side_px] = cv2.resize(face, (side_px, side_px),
                                                                 interpolation=cv2.INTER_CUBIC)
    return scene, (x_px, y_px, side_px, side_px)


def box_relative_to_tile(box: tuple, tile: tuple) -> tuple[float, float, float]:
    """``box`` as (side / tile side, centre offsets / tile side); a side is the mean of width and height."""
    tile_side = float(tile[2])
    offset_x = (box[0] + box[2] / 2 - tile[0] - tile[2] / 2) / tile_side
    offset_y = (box[1] + box[3] / 2 - tile[1] - tile[3] / 2) / tile_side
    return (box[2] + box[3]) / 2 / tile_side, offset_x, offset_y


def measure_boxes(faces: np.ndarray, seed: int, params: DetectConfig) -> BoxTable:
    """Render each face once at a random video size and record the cascade's box on it."""
    cascade, generator = load_cascade(), np.random.default_rng(seed)
    low, high = np.log(FACE_SIDE_RANGE_PX[0]), np.log(FACE_SIDE_RANGE_PX[1])
    rows = []
    for face in faces:
        side_px = int(round(np.exp(generator.uniform(low, high))))
        scene, tile = render_scene(face, side_px, generator)
        best = max(find_faces(scene, cascade, params), key=lambda box: iou(box, tile), default=None)
        if best is not None and iou(best, tile) >= MIN_MATCH_IOU:
            rows.append(box_relative_to_tile(best, tile))
    if not rows:
        raise SystemExit("the cascade found none of the rendered faces")
    return BoxTable(np.asarray(rows, np.float32), len(rows) / len(faces))


def main() -> None:
    """Measure the table on Training faces and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fer2013.csv(.gz) with a Training split")
    parser.add_argument("--faces", type=int, default=3000, help="Training faces to render (default: 3000)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--out", type=Path, default=TABLE_PATH)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    faces, _ = load_dataset(arguments.data).select("Training")
    rows = np.sort(np.random.default_rng(arguments.seed).choice(len(faces), size=min(arguments.faces, len(faces)),
                                                                replace=False))
    params = DetectConfig()
    table = measure_boxes(faces[rows], arguments.seed, params)
    LOGGER.info("found %.1f %% of %d faces; side share deciles %s", 100 * table.found_share, len(rows),
                table.side_deciles())
    arguments.out.write_text(json.dumps({
        "what": "Haar boxes on rendered FER2013 Training faces: side / tile side, centre offsets / tile side",
        "cascade": CASCADE_FILE,
        "settings": {"scale_factor": params.scale_factor, "min_neighbors": params.min_neighbors,
                     "min_size_px": params.min_size_px},
        "face_side_range_px": list(FACE_SIDE_RANGE_PX), "faces": len(rows), "seed": arguments.seed,
        "found_share": round(table.found_share, 4),
        "boxes": [[round(float(value), 4) for value in row] for row in table.rows],
    }) + "\n")


if __name__ == "__main__":
    main()

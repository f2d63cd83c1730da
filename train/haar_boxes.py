"""Where the Haar cascade puts its box on a face, as measured: the table ``pipeline_view`` draws from.

A FER2013 face is a 48x48 crop framed by the dataset's own detector. The pipeline frames
the same face with OpenCV's Haar cascade, and its box is another one: mostly a little
tighter, a little off centre. ``benchmarks/measure_haar_boxes.py`` renders dataset faces
into frames at video sizes, runs the pipeline's own face finder on them, and writes, for
each face it finds, the box's side and centre relative to the face tile into
``haar_boxes.json`` beside this module. Training re-frames faces by drawing from it, so it
follows the cascade rather than a guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TABLE_PATH = Path(__file__).with_name("haar_boxes.json")


@dataclass(frozen=True)
class BoxTable:
    """Measured boxes: rows ``(side share, centre x offset, centre y offset)``, all in tile sides."""

    rows: np.ndarray
    found_share: float

    def draw(self, generator: np.random.Generator) -> tuple[float, float, float]:
        """One measured box, chosen at random."""
        scale, offset_x, offset_y = self.rows[int(generator.integers(len(self.rows)))]
        return float(scale), float(offset_x), float(offset_y)

    def side_deciles(self) -> list[float]:
        """The box side, in tile sides, at the nine deciles: the table in one line."""
        return np.quantile(self.rows[:, 0], np.linspace(0.1, 0.9, 9)).round(3).tolist()


def load_table(path: Path = TABLE_PATH) -> BoxTable:
    """The measured box table shipped beside this module."""
    table = json.loads(path.read_text())
    return BoxTable(np.asarray(table["boxes"], np.float32), float(table["found_share"]))

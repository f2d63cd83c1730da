"""Build the 1280x720 benchmark clip from the real footage in ``../shared/media``.

Four 640x360 cells, each one of the two real clips: office-woman as it is (top left),
phone-woman looped (top right), phone-woman mirrored and half a loop later (bottom left)
and office-woman mirrored and played backwards (bottom right).  So the clip has four
real faces that move, talk and turn, and phone-woman's loop point is a cut in its cells
every 115 frames.  Usage::

    python benchmarks/make_real_clip.py --out /tmp/fakeblock-real-720p.mp4
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

LOGGER = logging.getLogger("make_real_clip")
MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
CELL_WIDTH_PX, CELL_HEIGHT_PX = 640, 360
FPS = 29.97


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a clip, scaled to one cell."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, (CELL_WIDTH_PX, CELL_HEIGHT_PX), interpolation=cv2.INTER_CUBIC))
    capture.release()
    if not frames:
        raise SystemExit(f"cannot read {path}")
    return frames


def count_frames(path: Path) -> int:
    """How many frames a clip decodes to (the container's own count may be off)."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def cell_cuts(media: Path, frames: int) -> dict[int, list[int]]:
    """The frames where each cell of the montage cuts (phone-woman's loop point), cells
    numbered as :func:`make_clip` lays them out: 0 top left, 1 top right, 2 and 3 below."""
    loop = count_frames(media / "phone-woman.mp4")
    return {0: [], 1: list(range(loop, frames, loop)),
            2: list(range(loop - loop // 2, frames, loop)), 3: []}


def make_clip(media: Path, out: Path) -> int:
    """Write the 2x2 montage (mp4v) to ``out``; returns its frame count."""
    office, phone = read_frames(media / "office-woman.mp4"), read_frames(media / "phone-woman.mp4")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS,
                             (2 * CELL_WIDTH_PX, 2 * CELL_HEIGHT_PX))
    if not writer.isOpened():
        raise SystemExit(f"cannot write {out}")
    for index in range(len(office)):
        top = np.hstack([office[index], phone[index % len(phone)]])
        bottom = np.hstack([cv2.flip(phone[(index + len(phone) // 2) % len(phone)], 1),
                            cv2.flip(office[len(office) - 1 - index], 1)])
        writer.write(np.vstack([top, bottom]))
    writer.release()
    LOGGER.info("wrote %d frames to %s", len(office), out)
    return len(office)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=MEDIA, help="folder with office-woman.mp4 and phone-woman.mp4")
    parser.add_argument("--out", type=Path, default=Path("/tmp/fakeblock-real-720p.mp4"))
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    make_clip(arguments.media, arguments.out)


if __name__ == "__main__":
    main()

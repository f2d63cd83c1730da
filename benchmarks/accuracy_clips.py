"""The labelled clips of ``pipeline_accuracy.py``: PublicTest faces, held still or moving, in several codecs.

Every clip is 640x480 at 25 fps with three columns, each showing one PublicTest face at a
time, held for 12-24 frames, then the next (a column is now and then empty for a moment,
so a frame has 1-3 faces).  A *content* fixes the face sides, the background (plain or
textured) and the motion (a face held still where it appears, or drifting 1-3 px a frame);
an *encoder* fixes codec and quality.  The codec clips are one content (medium faces,
textured, moving) written by each encoder, so they differ in nothing but the codec.

What OpenCV's writer offers here (opencv-python 4.14, its bundled FFmpeg): ``mp4v``,
``XVID``, ``DIVX`` and ``FMP4`` are one encoder (FFmpeg's MPEG-4 part 2; the same frames
give the same pixels in each), ``VP80`` and ``FFV1`` (lossless) work, ``avc1``/``H264``
do not open.  FFmpeg encoders have no quality knob through OpenCV: the writer sets their
bit rate from frame size and rate (and ``qmin`` 3) and passes ``OPENCV_FFMPEG_WRITER_OPTIONS``
to the hardware-encoder choice only, so mp4v and VP8 come in one quality each.  OpenCV's
own MJPEG writer (``CAP_OPENCV_MJPEG``) takes ``VIDEOWRITER_PROP_QUALITY``: MJPG is written
at two qualities.

The truth, beside each clip (``clip.truth.json``, as ``make_video.py`` writes it), lists per
frame each face's tile ``box``, its ``emotion``, ``face`` (one number per placed face) and
``row``, its index in the PublicTest split; and the luma PSNR of the decoded faces against
the rendered ones (``face_psnr_db``; None when lossless).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from make_video import face_tile, truth_path
from stress_corpus import background, paste

from fakeblock.common.model_io import EMOTIONS

LOGGER = logging.getLogger("accuracy_clips")
WIDTH_PX, HEIGHT_PX, FPS = 640, 480, 25.0
COLUMNS = 3
HOLD_FRAMES = (12, 25)  # a face stays this many frames (numpy's half-open range)
EMPTY_FRAMES = (5, 16)  # a column left empty stays so this long
EMPTY_SHARE = 0.2  # of the changes in columns 2 and 3; column 1 always shows a face
SPEED_PX = (1.0, 3.0)  # a moving face's pixels per frame
SIZES_PX = {"small": (60, 81), "medium": (100, 131), "large": (150, 201)}


@dataclass(frozen=True)
class Encoder:
    """How a clip is written: OpenCV fourcc, file suffix, backend, and quality (None: the codec's only one)."""

    codec: str
    fourcc: str
    suffix: str
    backend: int = cv2.CAP_FFMPEG
    quality: int | None = None
    lossless: bool = False

    def quality_name(self) -> str:
        """The quality column: ``lossless``, the MJPEG quality, or ``fixed``."""
        return "lossless" if self.lossless else "fixed" if self.quality is None else f"q{self.quality}"


ENCODERS = {
    "ffv1": Encoder("FFV1", "FFV1", ".mkv", lossless=True),
    "mp4v": Encoder("mp4v", "mp4v", ".mp4"),
    "mjpg90": Encoder("MJPG", "MJPG", ".avi", cv2.CAP_OPENCV_MJPEG, 90),
    "mjpg30": Encoder("MJPG", "MJPG", ".avi", cv2.CAP_OPENCV_MJPEG, 30),
    "vp8": Encoder("VP8", "VP80", ".mkv"),
}


@dataclass(frozen=True)
class Content:
    """What a clip shows: face sides (``SIZES_PX``), ``plain`` or ``textured``, ``still`` or ``moving``."""

    size: str
    background: str
    motion: str


# name: (content, encoder).  The codec clips share one content (and seed), so one picture.
CODEC_CONTENT = Content("medium", "textured", "moving")
CLIPS = {
    **{f"codec-{name}": (CODEC_CONTENT, name) for name in ENCODERS},
    "small-still": (Content("small", "textured", "still"), "mp4v"),
    "small-moving": (Content("small", "plain", "moving"), "mp4v"),
    "medium-still": (Content("medium", "plain", "still"), "mp4v"),
    "large-still": (Content("large", "textured", "still"), "mp4v"),
    "large-moving": (Content("large", "plain", "moving"), "mp4v"),
}
QUICK_CLIPS = ("large-still", "codec-mjpg30")


@dataclass
class Placement:
    """One face on screen: its PublicTest row, person number, side, position and velocity."""

    row: int
    person: int
    size_px: int
    position: np.ndarray
    velocity: np.ndarray


def column_limits(column: int, size_px: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """The x and y ranges a face's top left corner may take in its column."""
    width_px = WIDTH_PX // COLUMNS
    left = column * width_px + 2
    return (left, left + max(0, width_px - 4 - size_px)), (0.0, float(HEIGHT_PX - size_px))


class Planner:
    """Hands out faces to the columns, frame by frame: which face, where, moving how."""

    def __init__(self, content: Content, face_count: int, generator: np.random.Generator):
        self.content, self.generator = content, generator
        self.rows = iter(generator.permutation(face_count))
        self.people = 0
        self.current: list[Placement | None] = [None] * COLUMNS
        self.until = [0] * COLUMNS

    def new_face(self, column: int) -> Placement:
        """A fresh face for ``column``, at a random place in it, with a random heading if moving."""
        size_px = int(self.generator.integers(*SIZES_PX[self.content.size]))
        (x_low, x_high), (y_low, y_high) = column_limits(column, size_px)
        position = np.array([self.generator.uniform(x_low, x_high), self.generator.uniform(y_low, y_high)])
        velocity = np.zeros(2)
        if self.content.motion == "moving":
            angle = self.generator.uniform(0, 2 * np.pi)
            velocity = np.array([np.cos(angle), np.sin(angle)]) * self.generator.uniform(*SPEED_PX)
        self.people += 1
        return Placement(int(next(self.rows)), self.people, size_px, position, velocity)

    def step(self, frame: int) -> list[tuple[int, Placement]]:
        """The faces of ``frame`` by column, after changing the columns whose time is up and moving the rest."""
        for column in range(COLUMNS):
            if frame >= self.until[column]:
                empty = column > 0 and self.current[column] is not None and self.generator.random() < EMPTY_SHARE
                self.current[column] = None if empty else self.new_face(column)
                self.until[column] = frame + int(self.generator.integers(*(EMPTY_FRAMES if empty else HOLD_FRAMES)))
            elif (placement := self.current[column]) is not None:
                placement.position += placement.velocity
                for axis, (low, high) in enumerate(column_limits(column, placement.size_px)):
                    if not low <= placement.position[axis] <= high:
                        placement.velocity[axis] = -placement.velocity[axis]
                        placement.position[axis] = min(max(placement.position[axis], low), high)
        return [(column, placement) for column, placement in enumerate(self.current) if placement is not None]


def render_clip(content: Content, frames: int, faces: np.ndarray, labels: np.ndarray,
                seed: int) -> tuple[list[np.ndarray], list[list[dict]]]:
    """Every frame of a content (seeded: the same seed, the same pixels) and its truth."""
    generator = np.random.default_rng(seed)
    if content.background == "textured":
        scene = background(generator, WIDTH_PX, HEIGHT_PX, tuple(int(v) for v in generator.integers(80, 180, 3)))
    else:
        scene = np.full((HEIGHT_PX, WIDTH_PX, 3), generator.integers(90, 200, 3), np.uint8)
    planner = Planner(content, len(faces), generator)
    images, truth = [], []
    for frame in range(frames):
        image, listed = scene.copy(), []
        for _column, placement in planner.step(frame):
            x, y = (int(round(value)) for value in placement.position)
            box = paste(image, face_tile(faces[placement.row], placement.size_px), x, y)
            listed.append({"box": box, "emotion": EMOTIONS[int(labels[placement.row])], "face": placement.person,
                           "row": placement.row})
        images.append(image)
        truth.append(listed)
    return images, truth


def write_clip(path: Path, encoder: Encoder, images: list[np.ndarray]) -> None:
    """Write ``images`` with ``encoder``; a writer that does not open, or a quality not taken, is an error."""
    writer = cv2.VideoWriter(str(path), encoder.backend, cv2.VideoWriter_fourcc(*encoder.fourcc), FPS,
                             (WIDTH_PX, HEIGHT_PX))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write {encoder.fourcc} to {path} here")
    if encoder.quality is not None and not writer.set(cv2.VIDEOWRITER_PROP_QUALITY, encoder.quality):
        raise SystemExit(f"OpenCV's {encoder.fourcc} writer does not take a quality here")
    for image in images:
        writer.write(image)
    writer.release()


def face_psnr_db(path: Path, images: list[np.ndarray], truth: list[list[dict]]) -> float | None:
    """Luma PSNR of the decoded clip's face boxes against the rendered ones (None: identical); every
    frame must come back."""
    capture = cv2.VideoCapture(str(path))
    squared = pixels = 0.0
    for number, (image, faces) in enumerate(zip(images, truth, strict=True)):
        ok, decoded = capture.read()
        if not ok:
            raise SystemExit(f"{path}: only {number} of {len(images)} frames read back")
        rendered, back = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.cvtColor(decoded, cv2.COLOR_BGR2GRAY)
        for x, y, width, height in (face["box"] for face in faces):
            difference = rendered[y:y + height, x:x + width].astype(np.float64) - back[y:y + height, x:x + width]
            squared, pixels = squared + float(np.sum(difference ** 2)), pixels + difference.size
    capture.release()
    return None if squared == 0 else 10 * np.log10(255.0 ** 2 * pixels / squared)


def build_clips(faces: np.ndarray, labels: np.ndarray, out_dir: Path, names: list[str], frames: int,
                seed: int) -> dict[str, Path]:
    """Each named clip of ``frames`` frames in ``out_dir``, built unless already there; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = list(dict.fromkeys(content for content, _encoder in CLIPS.values()))
    paths = {}
    for name in names:
        content, encoder_name = CLIPS[name]
        encoder = ENCODERS[encoder_name]
        path = out_dir / f"{name}-{frames}-s{seed}{encoder.suffix}"
        if not path.exists() or not truth_path(path).exists():
            images, truth = render_clip(content, frames, faces, labels, seed + contents.index(content))
            write_clip(path, encoder, images)
            psnr = face_psnr_db(path, images, truth)
            truth_path(path).write_text(json.dumps({
                "frames": truth, "fps": FPS, "width": WIDTH_PX, "height": HEIGHT_PX, "codec": encoder.codec,
                "quality": encoder.quality_name(), "face_psnr_db": psnr}))
            LOGGER.info("built %s (face PSNR %s)", path, "lossless" if psnr is None else f"{psnr:.1f} dB")
        paths[name] = path
    return paths

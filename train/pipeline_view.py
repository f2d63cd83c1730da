"""The pipeline's view of a dataset face: a 48x48 crop as a video frame and the cascade deliver it.

In a video the classifier never meets a face cut as FER2013 cuts it. The face is shown
larger (60-200 px), a camera changes its exposure, blurs it and adds noise, a codec
compresses it in 8x8 blocks, the Haar cascade boxes it tighter or wider and off centre,
and the crop is shrunk back to 48x48. ``pipeline_views`` does all of that to a batch of
dataset faces, in that order, with the pipeline's own crop code (``crop_face``) and the
box shapes the cascade was measured to give (``haar_boxes``). Every draw comes from one
seed, so a batch's views are a pure function of it (exact resume, see ``augment``).
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fakeblock.common.preprocess import crop_face
from fakeblock.train.haar_boxes import BoxTable, load_table
from fakeblock.train.pipeline_view_settings import (
    BLOCK_PX,
    BLUR_SIGMA_RANGE_PX,
    CODEC_SHARES,
    CONTEXT_SHARE,
    EXPOSURE_RANGE,
    FACE_SIDE_RANGE_PX,
    GAMMA_RANGE,
    JPEG_QUALITY_RANGE,
    NOISE_SIGMA_RANGE,
    VIDEO_FRAME_PX,
)

UPSCALE_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)


@dataclass(frozen=True)
class Canvas:
    """One face shown in a video: the grey picture around it, where the tile lies, and its codec."""

    picture: np.ndarray
    tile: tuple[int, int, int, int]
    codec: str
    quality: int


def log_uniform(generator: np.random.Generator, low: float, high: float) -> float:
    """A draw whose logarithm is uniform: as many halvings as doublings."""
    return float(np.exp(generator.uniform(np.log(low), np.log(high))))


def show_face(face: np.ndarray, generator: np.random.Generator) -> Canvas:
    """``face`` scaled to a video size, framed by context and seen through a camera."""
    side_px = int(round(log_uniform(generator, *FACE_SIDE_RANGE_PX)))
    interpolation = UPSCALE_INTERPOLATIONS[int(generator.integers(len(UPSCALE_INTERPOLATIONS)))]
    tile = cv2.resize(face, (side_px, side_px), interpolation=interpolation)
    margin_px = int(np.ceil(CONTEXT_SHARE * side_px))
    phase_x, phase_y = (int(value) for value in generator.integers(0, BLOCK_PX, size=2))
    # the face's surroundings: the head and scene continued (mirrored), or a flat backdrop
    border = cv2.BORDER_REFLECT_101 if generator.random() < 0.7 else cv2.BORDER_CONSTANT
    picture = cv2.copyMakeBorder(tile, margin_px + phase_y, margin_px, margin_px + phase_x, margin_px, border,
                                 value=int(generator.integers(0, 256)))
    picture = camera(picture, generator)
    codec = str(generator.choice(list(CODEC_SHARES), p=list(CODEC_SHARES.values())))
    quality = int(generator.integers(JPEG_QUALITY_RANGE[0], JPEG_QUALITY_RANGE[1] + 1))
    return Canvas(picture, (margin_px + phase_x, margin_px + phase_y, side_px, side_px), codec, quality)


def camera(picture: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """Exposure and gamma, optical blur, then sensor noise: what a camera does before the codec."""
    values = picture.astype(np.float32) / 255.0
    values = log_uniform(generator, *EXPOSURE_RANGE) * values ** log_uniform(generator, *GAMMA_RANGE)
    sigma_px = generator.uniform(*BLUR_SIGMA_RANGE_PX)
    if sigma_px > 0.3:
        values = cv2.GaussianBlur(values, (0, 0), sigma_px)
    noise = generator.normal(0.0, generator.uniform(*NOISE_SIGMA_RANGE) / 255.0, values.shape)
    return np.clip(np.rint((values + noise.astype(np.float32)) * 255.0), 0, 255).astype(np.uint8)


def compress_jpeg(picture: np.ndarray, quality: int) -> np.ndarray:
    """``picture`` after a JPEG round trip at ``quality`` (0-100)."""
    ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


def compress_video(pictures: list[np.ndarray]) -> list[np.ndarray]:
    """``pictures`` after an mp4v round trip, each in the top-left corner of a video frame of its own."""
    if not pictures:
        return []
    if max(max(picture.shape) for picture in pictures) > VIDEO_FRAME_PX:
        raise ValueError(f"a picture larger than the {VIDEO_FRAME_PX}-px video frame")
    with tempfile.TemporaryDirectory(prefix="fakeblock-view-") as folder:
        path = str(Path(folder) / "faces.mp4")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (VIDEO_FRAME_PX, VIDEO_FRAME_PX),
                                 isColor=False)
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write mp4v video here")
        for picture in pictures:
            frame = np.zeros((VIDEO_FRAME_PX, VIDEO_FRAME_PX), np.uint8)
            frame[:picture.shape[0], :picture.shape[1]] = picture
            writer.write(frame)
        writer.release()
        capture = cv2.VideoCapture(path)
        decoded = []
        for picture in pictures:
            ok, frame = capture.read()
            if not ok:
                raise RuntimeError("OpenCV could not read back its own mp4v video")
            decoded.append(np.ascontiguousarray(frame[:picture.shape[0], :picture.shape[1], 0]))
        capture.release()
    return decoded


def reframe(canvas: Canvas, picture: np.ndarray, box_shape: tuple[float, float, float]) -> np.ndarray:
    """The 48x48 crop of the box ``(side share, centre offsets)`` around the tile, cut as the pipeline cuts."""
    scale, offset_x, offset_y = box_shape
    x_px, y_px, side_px, _ = canvas.tile
    box_side_px = max(int(round(scale * side_px)), 1)
    centre_x = x_px + side_px / 2 + offset_x * side_px
    centre_y = y_px + side_px / 2 + offset_y * side_px
    box = (int(round(centre_x - box_side_px / 2)), int(round(centre_y - box_side_px / 2)), box_side_px, box_side_px)
    return crop_face(picture, box)


def pipeline_views(faces: np.ndarray, seed: tuple[int, int] | np.ndarray, probability: float,
                   table: BoxTable | None = None) -> np.ndarray:
    """Each face ``(N, 48, 48)`` uint8 as the pipeline sees it, with ``probability``; the rest unchanged."""
    table = table or default_table()
    generator = np.random.default_rng([int(value) & 0xFFFFFFFF for value in np.ravel(seed)])
    chosen = generator.random(len(faces)) < probability
    views = np.array(faces, np.uint8, copy=True)
    canvases = {index: show_face(faces[index], generator) for index in np.flatnonzero(chosen)}
    shapes = {index: table.draw(generator) for index in canvases}
    pictures = {index: (compress_jpeg(canvas.picture, canvas.quality) if canvas.codec == "jpeg" else canvas.picture)
                for index, canvas in canvases.items()}
    video = [index for index, canvas in canvases.items() if canvas.codec == "mp4v"]
    for index, picture in zip(video, compress_video([pictures[index] for index in video]), strict=True):
        pictures[index] = picture
    for index, canvas in canvases.items():
        views[index] = reframe(canvas, pictures[index], shapes[index])
    return views


def parameters() -> dict:
    """The view's settings, for the model card."""
    table = default_table()
    return {"face_side_range_px": list(FACE_SIDE_RANGE_PX), "context_share": CONTEXT_SHARE,
            "codec_shares": CODEC_SHARES, "jpeg_quality_range": list(JPEG_QUALITY_RANGE),
            "gamma_range": list(GAMMA_RANGE), "exposure_range": list(EXPOSURE_RANGE),
            "blur_sigma_range_px": list(BLUR_SIGMA_RANGE_PX), "noise_sigma_range": list(NOISE_SIGMA_RANGE),
            "haar_boxes": {"measured": len(table.rows), "found_share": round(table.found_share, 4),
                           "side_share_deciles": table.side_deciles()}}


@functools.cache
def default_table() -> BoxTable:
    """The shipped box table, read once."""
    return load_table()

"""The annotated frame: a box and top-emotion label on each face, and a bar per emotion beside it.

Sizes follow the frame's height so the text stays readable from 596x336 previews up to
1080p; the bar panel goes to the right of the face, or to its left when there is no room,
and is always kept inside the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fakeblock.common import wire
from fakeblock.common.model_io import EMOTIONS

Box = tuple[int, int, int, int]
# (box, scores) or (box, scores, track id): the label names the track when there is one.
Face = tuple[Box, Sequence[float]] | tuple[Box, Sequence[float], int]

# Saturated green stands out on skin and backgrounds and survives JPEG compression,
# which lets the browser test find the box in a screenshot.
BOX_COLOUR_BGR = (0, 255, 0)
LABEL_TEXT_BGR = (0, 0, 0)
PANEL_BGR = (24, 24, 24)
PANEL_OPACITY = 0.65
NAME_TEXT_BGR = (235, 235, 235)
BAR_BGR = (200, 160, 60)
FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_FONT_SCALE = 0.4
MAX_FONT_SCALE = 1.0
FRAME_HEIGHT_PER_FONT_SCALE_PX = 960
GAP_PX = 4


@dataclass(frozen=True)
class _Layout:
    """Text and panel metrics for one frame size."""

    font_scale: float
    thickness: int
    line_px: int
    text_px: int
    name_width_px: int
    bar_width_px: int
    box_thickness: int

    @property
    def panel_size_px(self) -> tuple[int, int]:
        """(width, height) of the emotion-bar panel."""
        return (3 * GAP_PX + self.name_width_px + self.bar_width_px, GAP_PX + len(EMOTIONS) * self.line_px)


def faces_of(result: wire.Result | None) -> list[Face]:
    """The ``(box, scores)`` pairs of a result, ready for :func:`draw_overlay` (none for None)."""
    if result is None:
        return []
    if result.tracks:
        return list(zip(result.boxes, result.scores, result.tracks, strict=True))
    return list(zip(result.boxes, result.scores, strict=True))


def draw_overlay(frame: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A BGR copy of ``frame`` with every face's box, top-emotion label and seven score bars.

    ``faces`` holds ``(box, scores)`` pairs or ``(box, scores, track)`` triples: ``box`` is
    ``(x, y, width, height)`` in frame pixels, ``scores`` seven numbers in ``EMOTIONS``
    order and ``track`` the face's track id, shown as ``#3`` in its label.  The input is
    never written to (decoded frames are read-only); grey frames come back as BGR.
    """
    image = _bgr_copy(frame)
    layout = _layout(image.shape[0])
    for face in faces:
        x, y, width, height = (int(value) for value in face[0])
        box, scores = (x, y, width, height), face[1]
        track = face[2] if len(face) > 2 else None
        cv2.rectangle(image, box[:2], (box[0] + box[2], box[1] + box[3]), BOX_COLOUR_BGR, layout.box_thickness)
        label_right_px = _draw_label(image, box, scores, layout, track)
        _draw_bars(image, box, scores, layout, label_right_px)
    return image


def _bgr_copy(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(np.ascontiguousarray(frame.reshape(frame.shape[:2])), cv2.COLOR_GRAY2BGR)
    return np.array(frame, dtype=np.uint8, copy=True, order="C")


def _layout(frame_height_px: int) -> _Layout:
    font_scale = min(MAX_FONT_SCALE, max(MIN_FONT_SCALE, frame_height_px / FRAME_HEIGHT_PER_FONT_SCALE_PX))
    thickness = 2 if font_scale >= 0.8 else 1
    (name_width_px, text_px), baseline_px = cv2.getTextSize(max(EMOTIONS, key=len), FONT, font_scale, thickness)
    return _Layout(font_scale, thickness, line_px=text_px + baseline_px + 2, text_px=text_px,
                   name_width_px=name_width_px, bar_width_px=max(40, name_width_px),
                   box_thickness=max(2, round(frame_height_px / 240)))


def _draw_label(image: np.ndarray, box: Box, scores: Sequence[float], layout: _Layout, track: int | None) -> int:
    """``#3 happy 87%`` on a box-coloured tag above the face (inside at the top edge); returns its right x."""
    best = int(np.argmax(scores))
    text = f"{EMOTIONS[best]} {100 * float(scores[best]):.0f}%"
    if track is not None:
        text = f"#{track} {text}"
    (width_px, _), baseline_px = cv2.getTextSize(text, FONT, layout.font_scale, layout.thickness)
    tag_height_px = layout.text_px + baseline_px + GAP_PX
    x, top = box[0], box[1] - tag_height_px
    if top < 0:
        top = box[1]
    cv2.rectangle(image, (x, top), (x + width_px + 2 * GAP_PX, top + tag_height_px), BOX_COLOUR_BGR, cv2.FILLED)
    cv2.putText(image, text, (x + GAP_PX, top + layout.text_px + GAP_PX // 2), FONT, layout.font_scale,
                LABEL_TEXT_BGR, layout.thickness, cv2.LINE_AA)
    return x + width_px + 2 * GAP_PX


def _panel_origin(box: Box, right_px: int, panel_size_px: tuple[int, int],
                  frame_size_px: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the bar panel: right of ``right_px`` (face and label), else left of the face.

    The panel is clamped to the frame, so it may cover part of a face near both edges.
    """
    panel_width, panel_height = panel_size_px
    frame_width, frame_height = frame_size_px
    x = right_px + GAP_PX
    if x + panel_width > frame_width:
        x = box[0] - GAP_PX - panel_width
    x = min(max(x, 0), max(frame_width - panel_width, 0))
    y = min(max(box[1], 0), max(frame_height - panel_height, 0))
    return x, y


def _shade(image: np.ndarray, x: int, y: int, width: int, height: int) -> None:
    """Darken a rectangle (clipped to the image) so white text reads on any background."""
    region = image[max(y, 0):y + height, max(x, 0):x + width]
    if region.size:
        panel = np.full_like(region, PANEL_BGR)
        cv2.addWeighted(panel, PANEL_OPACITY, region, 1 - PANEL_OPACITY, 0, dst=region)


def _draw_bars(image: np.ndarray, box: Box, scores: Sequence[float], layout: _Layout, label_right_px: int) -> None:
    """Seven rows of ``name ▇▇▇``: bar length is the score (0..1) of that emotion."""
    panel_width, panel_height = layout.panel_size_px
    right_px = max(box[0] + box[2], label_right_px)
    x, y = _panel_origin(box, right_px, layout.panel_size_px, (image.shape[1], image.shape[0]))
    _shade(image, x, y, panel_width, panel_height)
    best = int(np.argmax(scores))
    bar_x = x + 2 * GAP_PX + layout.name_width_px
    for row, (name, score) in enumerate(zip(EMOTIONS, scores, strict=True)):
        top = y + GAP_PX // 2 + row * layout.line_px
        baseline_y = top + layout.text_px
        cv2.putText(image, name, (x + GAP_PX, baseline_y), FONT, layout.font_scale, NAME_TEXT_BGR,
                    layout.thickness, cv2.LINE_AA)
        length_px = int(round(min(max(float(score), 0.0), 1.0) * layout.bar_width_px))
        colour = BOX_COLOUR_BGR if row == best else BAR_BGR
        cv2.rectangle(image, (bar_x, top + 1), (bar_x + max(length_px, 1), baseline_y), colour, cv2.FILLED)

"""Plain geometry on face boxes ``(x, y, width, height)`` in frame pixels."""

from __future__ import annotations

Box = tuple[int, int, int, int]
# Two boxes share a face when their overlap covers this much of the smaller one (a chin
# box inside a face box, or the same face found by two scans at slightly other sizes).
SAME_FACE_OVERLAP = 0.5


def intersection_area(first: Box, second: Box) -> int:
    """Pixels the two boxes share."""
    width = min(first[0] + first[2], second[0] + second[2]) - max(first[0], second[0])
    height = min(first[1] + first[3], second[1] + second[3]) - max(first[1], second[1])
    return max(0, width) * max(0, height)


def iou(first: Box, second: Box) -> float:
    """Intersection over union, 0 for disjoint boxes."""
    shared = intersection_area(first, second)
    union = first[2] * first[3] + second[2] * second[3] - shared
    return shared / union if union > 0 else 0.0


def overlap_of_smaller(first: Box, second: Box) -> float:
    """The share of the smaller box that lies inside the other one."""
    smaller = min(first[2] * first[3], second[2] * second[3])
    return intersection_area(first, second) / smaller if smaller > 0 else 0.0


def clip(box: Box, width_px: int, height_px: int) -> Box | None:
    """The part of ``box`` inside a ``width_px`` x ``height_px`` frame (None when nothing is)."""
    left, top = max(0, box[0]), max(0, box[1])
    right, bottom = min(width_px, box[0] + box[2]), min(height_px, box[1] + box[3])
    if right <= left or bottom <= top:
        return None
    return (left, top, right - left, bottom - top)


def grow(box: Box, margin_px: int) -> Box:
    """``box`` widened by ``margin_px`` on every side."""
    return (box[0] - margin_px, box[1] - margin_px, box[2] + 2 * margin_px, box[3] + 2 * margin_px)


def contains(outer: Box, inner: Box) -> bool:
    """True when ``inner`` lies wholly inside ``outer``."""
    return (outer[0] <= inner[0] and outer[1] <= inner[1] and inner[0] + inner[2] <= outer[0] + outer[2]
            and inner[1] + inner[3] <= outer[1] + outer[3])


def one_box_per_face(boxes: list[Box]) -> list[Box]:
    """Largest first, drop every box that mostly lies inside a larger box already kept."""
    kept: list[Box] = []
    for box in sorted(set(boxes), key=lambda b: (-b[2] * b[3], b)):
        if all(overlap_of_smaller(box, other) < SAME_FACE_OVERLAP for other in kept):
            kept.append(box)
    return kept

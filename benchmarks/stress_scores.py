"""How well tracking holds on one clip: the figures ``stress.py`` prints, as pure functions.

Every function takes a clip's faces frame by frame, as lists of dicts with a ``box``
(``[x, y, width, height]``), and, for tracked faces, a ``track`` id; the reference is
the full-frame scan's faces (``--tracking off``), the truth (where a clip has one) lists
each placed face with its ``emotion`` and ``face`` (one number per person).

- **recall**: the share of the truth's faces (or of the reference's boxes) that the
  tracked run found, IoU >= ``MATCH_IOU``; the *stable* reference boxes are those the
  reference also has in the frames before and after (a face, not a flicker).
- **frames to first find**: the reference's boxes linked frame to frame into *runs*;
  for each run of at least ``STABLE_FRAMES`` frames, how many frames from its start until
  the tracked run has it (1: at once), split by whether the picture at the box changed
  when the run began (a face that moved or appeared) or not (it must wait for the
  coverage cycle).
- **ids per face** and **identity switches**: how many track ids each person got, and how
  often a track id passed from one person to another.
- **e2e accuracy**: right emotions over all the truth's faces (a missed face counts as
  wrong), for the smoothed ``emotion`` and the frame's own top score ``scores_raw``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fakeblock.detect.boxes import iou

MATCH_IOU = 0.3
# A reference run this long is a face the full-frame scan holds, not a flicker.
STABLE_FRAMES = 3

Frames = Sequence[Sequence[dict]]


def match(box: Sequence[int], faces: Sequence[dict]) -> dict | None:
    """The face whose box overlaps ``box`` most (at IoU >= ``MATCH_IOU``), or None."""
    best = max(faces, key=lambda face: iou(tuple(box), tuple(face["box"])), default=None)
    return best if best is not None and iou(tuple(box), tuple(best["box"])) >= MATCH_IOU else None


def assign(expected: Sequence[dict], found: Sequence[dict]) -> list[dict | None]:
    """For each expected face, the found face it is (IoU >= ``MATCH_IOU``), one to one, best
    overlaps first: one box over two overlapping faces counts for one of them."""
    pairs = sorted((-iou(tuple(face["box"]), tuple(ours["box"])), index, other)
                   for index, face in enumerate(expected) for other, ours in enumerate(found)
                   if iou(tuple(face["box"]), tuple(ours["box"])) >= MATCH_IOU)
    assigned: list[dict | None] = [None] * len(expected)
    used: set[int] = set()
    for _overlap, index, other in pairs:
        if assigned[index] is None and other not in used:
            assigned[index] = found[other]
            used.add(other)
    return assigned


def recall(found: Frames, expected: Frames) -> float:
    """The share of ``expected``'s faces that ``found`` has in the same frame (one box, one face)."""
    hits = total = 0
    for ours, theirs in zip(found, expected, strict=False):
        assigned = assign(theirs, ours)
        hits, total = hits + sum(face is not None for face in assigned), total + len(assigned)
    return hits / total if total else 1.0


def stable_recall(found: Frames, reference: Frames) -> float:
    """The share of the reference's stable boxes (also in the frames before and after) that ``found`` has."""
    hits = total = 0
    for index in range(1, len(reference) - 1):
        for face in reference[index]:
            if match(face["box"], reference[index - 1]) and match(face["box"], reference[index + 1]):
                hits, total = hits + (match(face["box"], found[index]) is not None), total + 1
    return hits / total if total else 1.0


@dataclass(frozen=True)
class Run:
    """Consecutive frames in which the reference has one face: its first frame and boxes."""

    start: int
    boxes: tuple[tuple[int, int, int, int], ...]


def reference_runs(reference: Frames) -> list[Run]:
    """The reference's boxes linked frame to frame (IoU >= ``MATCH_IOU``, best overlap first)."""
    finished: list[Run] = []
    open_runs: list[Run] = []
    for index, faces in enumerate(reference):
        boxes = [tuple(face["box"]) for face in faces]
        pairs = sorted(((-iou(run.boxes[-1], box), run_index, box_index)
                        for run_index, run in enumerate(open_runs) for box_index, box in enumerate(boxes)
                        if iou(run.boxes[-1], box) >= MATCH_IOU))
        extended: dict[int, int] = {}
        for _overlap, run_index, box_index in pairs:
            if run_index not in extended and box_index not in extended.values():
                extended[run_index] = box_index
        still_open = []
        for run_index, run in enumerate(open_runs):
            if run_index in extended:
                still_open.append(Run(run.start, run.boxes + (boxes[extended[run_index]],)))
            else:
                finished.append(run)
        still_open += [Run(index, (box,)) for box_index, box in enumerate(boxes) if box_index not in extended.values()]
        open_runs = still_open
    return sorted(finished + open_runs, key=lambda run: (run.start, run.boxes[0]))


def frames_to_find(found: Frames, run: Run) -> int | None:
    """Frames from a run's start until ``found`` has its box (1: in its first frame); None: never in the run."""
    for offset, box in enumerate(run.boxes):
        if match(box, found[run.start + offset]) is not None:
            return offset + 1
    return None


def first_finds(found: Frames, reference: Frames,
                changed: Callable[[int, tuple[int, int, int, int]], bool]) -> dict[str, list[int | None]]:
    """Frames to first find of every stable reference run, as ``{"changed": [...], "still": [...]}``.

    ``changed(frame, box)`` says whether the picture at ``box`` changed when the run began
    (between the frame before and ``frame``): a face that moved or appeared.
    """
    finds: dict[str, list[int | None]] = {"changed": [], "still": []}
    for run in reference_runs(reference):
        if len(run.boxes) >= STABLE_FRAMES:
            kind = "changed" if run.start == 0 or changed(run.start, run.boxes[0]) else "still"
            finds[kind].append(frames_to_find(found, run))
    return finds


def find_summary(finds: Sequence[int | None], never: int) -> tuple[float, int]:
    """Median and maximum frames to first find; a run never found counts as ``never`` frames."""
    values = [never if value is None else value for value in finds]
    return (statistics.median(values), max(values)) if values else (0.0, 0)


def persons(found: Frames, truth: Frames) -> list[list[tuple[int, int]]]:
    """Per frame, ``(person, track id)`` of each truth face that ``found`` has with a track id."""
    pairs = []
    for ours, expected in zip(found, truth, strict=False):
        frame = []
        for face, hit in zip(expected, assign(expected, ours), strict=True):
            if hit is not None and "track" in hit:
                frame.append((int(face["face"]), int(hit["track"])))
        pairs.append(frame)
    return pairs


def ids_per_face(found: Frames, truth: Frames) -> dict[int, int]:
    """How many persons got 1, 2, ... track ids while on screen: ``{ids: persons}``."""
    ids: dict[int, set[int]] = defaultdict(set)
    for frame in persons(found, truth):
        for person, track in frame:
            ids[person].add(track)
    counts: dict[int, int] = defaultdict(int)
    for tracks in ids.values():
        counts[len(tracks)] += 1
    return dict(sorted(counts.items()))


def identity_switches(found: Frames, truth: Frames) -> int:
    """How often a track id, seen on one person, is next seen on another: one id on two people."""
    last_person: dict[int, int] = {}
    switches = 0
    for frame in persons(found, truth):
        for person, track in frame:
            switches += track in last_person and last_person[track] != person
            last_person[track] = person
    return switches


def top_emotion(face: dict, key: str) -> str:
    """The face's emotion: its ``emotion`` field, or the top of another score map (``scores_raw``)."""
    if key == "emotion":
        return face["emotion"]
    scores = face.get(key) or face["scores"]
    return max(scores, key=scores.get)


def e2e_accuracy(found: Frames, truth: Frames, key: str = "emotion") -> float | None:
    """Right emotions over every truth face (a face not found counts as wrong); ``None``
    when the truth holds no face."""
    right = total = 0
    for ours, expected in zip(found, truth, strict=False):
        for face, hit in zip(expected, assign(expected, ours), strict=True):
            right, total = right + (hit is not None and top_emotion(hit, key) == face["emotion"]), total + 1
    return right / total if total else None


def held_truth(reference: Frames, cells: Sequence[tuple[int, int, int, int]]) -> list[list[dict]]:
    """Truth for a clip of one person per cell (the whole frame, or the cells of a montage): in
    each frame and cell, the largest reference box centred there of a run of at least
    ``STABLE_FRAMES`` frames (the face the full-frame scan holds, not a flicker), its person
    the cell's number."""
    held: list[dict[int, list[int]]] = [{} for _ in reference]
    for run in reference_runs(reference):
        if len(run.boxes) < STABLE_FRAMES:
            continue
        for offset, box in enumerate(run.boxes):
            centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
            for cell_index, (x, y, width, height) in enumerate(cells):
                if x <= centre[0] < x + width and y <= centre[1] < y + height:
                    best = held[run.start + offset].get(cell_index)
                    if best is None or box[2] * box[3] > best[2] * best[3]:
                        held[run.start + offset][cell_index] = list(box)
    return [[{"box": box, "face": cell_index} for cell_index, box in sorted(frame.items())] for frame in held]

"""Quality figures of a tracked replay, from results files: what ``tracking.py`` prints.

Every function reads JSON Lines results (one line per frame, as ``--results`` writes)
and, for the PublicTest clip, ``make_video.py``'s ground truth.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from fakeblock.detect.boxes import iou

MATCH_IOU = 0.3


def read_faces(path: Path) -> list[list[dict]]:
    """Each frame's faces, in frame order."""
    records = sorted((json.loads(line) for line in path.open()), key=lambda record: record["frame"])
    return [record["faces"] for record in records]


def match(box, faces: list[dict]) -> dict | None:
    """The face whose box overlaps ``box`` most (at IoU >= ``MATCH_IOU``), or None."""
    best = max(faces, key=lambda face: iou(box, face["box"]), default=None)
    return best if best is not None and iou(box, best["box"]) >= MATCH_IOU else None


def reference_lines(tracked: list[list[dict]], reference: list[list[dict]]) -> list[str]:
    """Share of the reference's boxes found, extra boxes per frame, and the share of stable ones found.

    A reference box is stable when the reference also has it in the frames before and after:
    a face, not a one-frame flicker of the cascade.
    """
    found = total = stable_found = stable_total = extra = 0
    for index, (ours, theirs) in enumerate(zip(tracked, reference, strict=False)):
        for face in theirs:
            hit = match(face["box"], ours) is not None
            found, total = found + hit, total + 1
            neighbours = reference[max(0, index - 1)], reference[min(len(reference) - 1, index + 1)]
            if 0 < index < len(reference) - 1 and all(match(face["box"], other) for other in neighbours):
                stable_found, stable_total = stable_found + hit, stable_total + 1
        extra += sum(match(face["box"], theirs) is None for face in ours)
    frames = max(1, len(tracked))
    return [f"full-frame boxes found: {found}/{total} = {found / max(1, total):.3f} "
            f"(stable ones {stable_found}/{stable_total} = {stable_found / max(1, stable_total):.3f}); "
            f"extra boxes per frame {extra / frames:.3f}"]


def truth_lines(name: str, faces: list[list[dict]], truth: list[list[dict]], key: str = "emotion") -> str:
    """Recall, false positives per frame and emotion accuracy on found faces against the ground truth."""
    hits = total = false_positives = correct = 0
    for ours, expected in zip(faces, truth, strict=False):
        for true_face in expected:
            found = match(true_face["box"], ours)
            total += 1
            if found is not None:
                hits += 1
                correct += top_emotion(found, key) == true_face["emotion"]
        false_positives += sum(all(iou(face["box"], true["box"]) < MATCH_IOU for true in expected) for face in ours)
    return (f"{name}: recall {hits / max(1, total):.3f}, false positives per frame "
            f"{false_positives / max(1, len(faces)):.3f}, emotion accuracy on found faces {correct / max(1, hits):.3f}")


def top_emotion(face: dict, key: str) -> str:
    """The face's emotion: its ``emotion`` field, or the top of another score map (``scores_raw``)."""
    if key == "emotion":
        return face["emotion"]
    scores = face.get(key) or face["scores"]
    return max(scores, key=scores.get)


def smoothing_ceiling_line(faces: list[list[dict]], truth: list[list[dict]]) -> str:
    """How far any smoothing of the per-frame scores could lift the emotion accuracy on found faces.

    Smoothing picks, for each frame of a face, a label from that face's frames' scores. Of
    a face whose frames all put the same wrong label on top it can turn none right unless
    it picks a label no frame picked; the ceiling counts the found face-frames of faces
    with at least one frame whose raw top emotion is right.  On a montage of still faces
    it equals the per-frame accuracy: the faces look the same frame after frame.
    """
    frames_of_face: dict[int, list[bool]] = defaultdict(list)
    for ours, expected in zip(faces, truth, strict=False):
        for true_face in expected:
            found = match(true_face["box"], ours)
            if found is not None:
                frames_of_face[true_face["face"]].append(top_emotion(found, "scores_raw") == true_face["emotion"])
    found_frames = sum(len(right) for right in frames_of_face.values())
    reachable = sum(len(right) for right in frames_of_face.values() if any(right))
    right_faces = sum(any(right) for right in frames_of_face.values())
    return (f"ceiling of any smoothing: {reachable / max(1, found_frames):.3f} of found face-frames belong to the "
            f"{right_faces} of {len(frames_of_face)} faces with a frame whose raw top emotion is right")


def ids_per_face(faces: list[list[dict]], truth: list[list[dict]]) -> dict[int, int]:
    """How many faces got 1, 2, ... track ids while on screen: ``{ids: faces}``."""
    ids = defaultdict(set)
    for ours, expected in zip(faces, truth, strict=False):
        for true_face in expected:
            found = match(true_face["box"], ours)
            if found is not None and "track" in found:
                ids[true_face["face"]].add(found["track"])
    counts = defaultdict(int)
    for tracks in ids.values():
        counts[len(tracks)] += 1
    return dict(sorted(counts.items()))


def quality_lines(tracked_path: Path, reference_path: Path, truth_path: Path) -> list[str]:
    """Every quality line for one clip."""
    tracked, reference = read_faces(tracked_path), read_faces(reference_path)
    lines = reference_lines(tracked, reference)
    missing_track = sum("track" not in face for frame in tracked for face in frame)
    lines.append(f"faces without a track id: {missing_track}")
    if truth_path.exists():
        truth = json.loads(truth_path.read_text())["frames"]
        lines.append(truth_lines("tracked (smoothed)", tracked, truth))
        lines.append(truth_lines("tracked, raw scores", tracked, truth, "scores_raw"))
        lines.append(truth_lines("--tracking off", reference, truth))
        lines.append(smoothing_ceiling_line(tracked, truth))
        lines.append(f"track ids per face ({{ids: faces}}): {ids_per_face(tracked, truth)}")
    return lines


def label_changes(path: Path, key: str = "emotion") -> int:
    """How often the largest face's top emotion changes between consecutive frames with a face."""
    changes, previous = 0, None
    for frame in read_faces(path):
        if not frame:
            continue
        largest = max(frame, key=lambda face: face["box"][2] * face["box"][3])
        label = top_emotion(largest, key)
        changes += previous is not None and label != previous
        previous = label
    return changes

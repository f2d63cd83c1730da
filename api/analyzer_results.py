"""What an :class:`~fakeblock.api.analyzer.Analyzer` returns: faces and frames.

Both are made from the display's results-file record
(:func:`fakeblock.display.core.result_record`), so their fields are a ``--results`` line's
and ``to_dict()`` gives that line back exactly: scores rounded to four decimals, the
frame's time to milliseconds, ``track`` and ``scores_raw`` only with tracking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fakeblock.detect.boxes import Box

# The stream name of a still image in its frame info (frame 0, at 0 s), unseen in its faces.
STILL_STREAM = "image"


@dataclass(frozen=True)
class Face:
    """One face: its box ``(x, y, width, height)`` in source pixels, its top emotion and scores.

    ``scores`` maps each of the seven emotions to its score (they sum to about 1);
    ``emotion`` is the top one.  With tracking (video only) ``track`` names the face across
    frames, ``scores`` are smoothed over the track and ``scores_raw`` are this frame's own;
    otherwise both are None.
    """

    box: Box
    emotion: str
    scores: Mapping[str, float]
    track: int | None = None
    scores_raw: Mapping[str, float] | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Face:
        """The face of one entry of a results line's ``faces``."""
        x, y, width, height = (int(value) for value in record["box"])
        raw = record.get("scores_raw")
        return cls((x, y, width, height), str(record["emotion"]), dict(record["scores"]), record.get("track"),
                   None if raw is None else dict(raw))

    def to_dict(self) -> dict[str, Any]:
        """The face as a results line holds it: ``box``, ``track``, ``emotion``, ``scores``, ``scores_raw``."""
        face: dict[str, Any] = {"box": list(self.box)}
        if self.track is not None:
            face["track"] = self.track
        face["emotion"] = self.emotion
        face["scores"] = dict(self.scores)
        if self.scores_raw is not None:
            face["scores_raw"] = dict(self.scores_raw)
        return face

    def top_scores(self, count: int = 3) -> list[tuple[str, float]]:
        """The ``count`` highest ``(emotion, score)`` pairs, highest first."""
        return sorted(self.scores.items(), key=lambda item: item[1], reverse=True)[:count]


@dataclass(frozen=True)
class FrameResult:
    """One frame of a video, folder or camera: which stream, its number (from 0), time and faces."""

    stream: str
    frame: int
    time_s: float
    faces: tuple[Face, ...]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FrameResult:
        """The frame of one results line."""
        return cls(str(record["stream"]), int(record["frame"]), float(record["time_s"]),
                   tuple(Face.from_record(face) for face in record["faces"]))

    def to_dict(self) -> dict[str, Any]:
        """The frame as a ``--results`` line: ``stream``, ``frame``, ``time_s``, ``faces``."""
        return {"stream": self.stream, "frame": self.frame, "time_s": self.time_s,
                "faces": [face.to_dict() for face in self.faces]}

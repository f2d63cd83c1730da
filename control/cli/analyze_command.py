"""``fakeblock analyze PATH...``: faces and emotions of images, folders and videos, in this process.

Each image gets a table (box, emotion, top scores) or, with ``--json``, one JSON line on
stdout: ``{"path": ..., "faces": [...]}`` with the faces of a ``--results`` line.  A video
(or camera, stream URL, ``demo``) gets one table, a row per face per frame, or one JSON
line per frame: ``{"path": ..., "stream": ..., "frame": ..., "time_s": ..., "faces": [...]}``.
A folder is its images, by name; one that does not decode is skipped with a warning, as
``fakeblock up --source folder/`` does.  Logs go to stderr.  The CLI imports this module
only when the command runs (it loads OpenCV).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from fakeblock.api.analyzer import Analyzer
from fakeblock.api.analyzer_results import Face, FrameResult
from fakeblock.capture.core import IMAGE_SUFFIXES, open_image_folder
from fakeblock.common.errors import UserError

LOGGER = logging.getLogger(__name__)
# Emotions named in a row's top scores, the top one first: a video row has three more
# columns (frame, time, track), and every row fits 80 columns.
IMAGE_TABLE_SCORES, VIDEO_TABLE_SCORES = 3, 2
SCORE_FORMAT = "{:.2f}"


class Printer:
    """Where results go: rich tables on stdout, or one JSON line each (``as_json``)."""

    def __init__(self, as_json: bool, console: Console | None = None):
        self.as_json, self.console = as_json, console or Console()

    def image(self, path: str, faces: Sequence[Face]) -> None:
        """One image's faces: a table, a 'no face' line, or a JSON line."""
        if self.as_json:
            typer.echo(json.dumps({"path": path, "faces": [face.to_dict() for face in faces]}))
        elif not faces:
            self.console.print(f"{path}: no face found", highlight=False)
        else:
            self.console.print(image_table(path, faces))

    def video(self, path: str, frames: Iterable[FrameResult]) -> None:
        """Every frame of a video: one JSON line each as they come, or one table at the end."""
        if self.as_json:
            for frame in frames:
                typer.echo(json.dumps({"path": path, **frame.to_dict()}))
            return
        table, frame_count, with_faces = video_table(), 0, 0
        for frame in frames:
            frame_count, with_faces = frame_count + 1, with_faces + bool(frame.faces)
            for face in frame.faces:
                table.add_row(str(frame.frame), f"{frame.time_s:.2f}", _track(face),
                              *_face_cells(face, VIDEO_TABLE_SCORES))
        table.title = f"{path}: {frame_count} frames, {with_faces} with a face"
        self.console.print(table if with_faces else table.title, highlight=False)


def _box_text(face: Face) -> str:
    x, y, width, height = face.box
    return f"{x},{y} {width}x{height}"


def _face_cells(face: Face, score_count: int) -> tuple[str, str, str]:
    """A face's box, emotion and top scores as table cells."""
    scores = "  ".join(f"{name} {SCORE_FORMAT.format(score)}" for name, score in face.top_scores(score_count))
    return _box_text(face), face.emotion, scores


def _track(face: Face) -> str:
    return "" if face.track is None else str(face.track)


def _table(title: str | None, *columns: str) -> Table:
    return Table(*columns, title=title, box=box.SIMPLE_HEAD, title_justify="left", highlight=False, pad_edge=False,
                 show_edge=False, collapse_padding=True)


def image_table(path: str, faces: Sequence[Face]) -> Table:
    """A table of one image's faces: number, box ``x,y wxh``, emotion, top scores."""
    table = _table(f"{path}: {len(faces)} face{'s' if len(faces) != 1 else ''}", "#", "box x,y wxh", "emotion",
                   "top scores")
    for number, face in enumerate(faces, start=1):
        table.add_row(str(number), *_face_cells(face, IMAGE_TABLE_SCORES))
    return table


def video_table() -> Table:
    """An empty table for a video's faces: frame, time, track, box, emotion, top scores."""
    return _table(None, "frame", "time s", "track", "box x,y wxh", "emotion", "top scores")


def analyze_path(analyzer: Analyzer, spec: str, printer: Printer, max_frames: int | None) -> None:
    """One command-line path: an image, a folder of images, or anything ``--source`` takes."""
    path = Path(spec).expanduser()
    if path.is_dir():
        _analyze_folder(analyzer, path, printer)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        printer.image(spec, analyzer.analyze(path))
    else:
        printer.video(spec, analyzer.analyze_video(spec, max_frames=max_frames))


def _analyze_folder(analyzer: Analyzer, folder: Path, printer: Printer) -> None:
    for image in open_image_folder(folder, realtime=False).paths:
        try:
            faces = analyzer.analyze(image)
        except UserError as error:
            LOGGER.warning("%s, skipped", error)
            continue
        printer.image(str(image), faces)


def run(paths: Sequence[str], options: Mapping[str, Any], as_json: bool = False) -> None:
    """Analyse every path in order with one analyzer made with ``options`` (``max_frames`` for videos)."""
    settings = dict(options)
    max_frames = settings.pop("max_frames", None)
    printer = Printer(as_json)
    with Analyzer(**settings) as analyzer:
        for spec in paths:
            analyze_path(analyzer, spec, printer, max_frames)

"""``fakeblock analyze PATH...``: faces and emotions of images, folders and videos, in this process.

Each image gets a table (box, emotion, top scores) or, with ``--json``, one JSON line on
stdout: ``{"path": ..., "faces": [...]}`` with the faces of a ``--results`` line.  A video
(or camera, stream URL, ``demo``) gets one table, a row per face per frame, or one JSON
line per frame: ``{"path": ..., "stream": ..., "frame": ..., "time_s": ..., "faces": [...]}``.
A folder is its images, by name; one that does not decode is skipped with a warning, as
``fakeblock up --source folder/`` does.  Logs go to stderr.  The CLI imports this module
only when the command runs (it loads OpenCV).

Everything prints as it is ready: a video's rows (under a header printed with the first
face) and every JSON line, flushed at once, so ``analyze clip.mp4 --json | head -1`` ends
after one frame.  When stdout is a terminal and the output is tables, a video or folder
has a progress bar below the rows (count, rate, time left when the length is known),
gone when it is done; piped, or with ``--json``, there is none.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Column, Table
from rich.text import Text

from fakeblock.api.analyzer import Analyzer, ProgressCallback
from fakeblock.api.analyzer_results import Face, FrameResult
from fakeblock.capture.core import IMAGE_SUFFIXES, names_a_file, open_image_folder
from fakeblock.common.errors import UserError
from fakeblock.control.status.replay_progress import clock

LOGGER = logging.getLogger(__name__)
# Emotions named in a row's top scores, the top one first: a video row has three more
# columns (frame, time, track), and every row fits 80 columns.
IMAGE_TABLE_SCORES, VIDEO_TABLE_SCORES = 3, 2
SCORE_FORMAT = "{:.2f}"
# A video's columns and their widths: its rows print one by one, so the widths are set, wide
# enough for 4-digit boxes, 27 hours of time and two top scores: 78 columns with the spaces.
VIDEO_COLUMNS = (("frame", 6), ("time s", 8), ("track", 5), ("box x,y wxh", 19), ("emotion", 8),
                 ("top scores", 27))
# The progress bar's name column and bar, so that with the count, rate and time left it fits 80.
BAR_NAME_CHARS, BAR_CHARS = 20, 16
# A closed stdout (``analyze ... | head -1`` once head has its line) ends the command quietly
# with 1, the code rich's Console and click already give a broken pipe, so every way the
# reader can leave ends the same; a traceback would only say that it left.
BROKEN_PIPE_EXIT_CODE = 1


class Printer:
    """Where results go, each as soon as it is ready: rich tables on stdout, or one JSON line each.

    ``show_progress`` (by default: tables to a terminal) puts a progress bar under the
    rows of a video or folder.
    """

    def __init__(self, as_json: bool, console: Console | None = None, show_progress: bool | None = None):
        self.as_json, self.console = as_json, console or Console()
        self.show_progress = (not as_json and self.console.is_terminal) if show_progress is None else show_progress

    def image(self, path: str, faces: Sequence[Face]) -> None:
        """One image's faces: a table, a 'no face' line, or a JSON line."""
        if self.as_json:
            write_json_line({"path": path, "faces": [face.to_dict() for face in faces]})
        elif not faces:
            self.console.print(f"{path}: no face found", highlight=False)
        else:
            self.console.print(image_table(path, faces))

    def video(self, path: str, frames: Iterable[FrameResult]) -> None:
        """Every frame of a video as it comes: a JSON line each, or a row per face, then a summary line."""
        if self.as_json:
            for frame in frames:
                write_json_line({"path": path, **frame.to_dict()})
            return
        frame_count, with_faces = 0, 0
        for frame in frames:
            if frame.faces and not with_faces:
                self.console.print(video_table(path, show_header=True))
            frame_count, with_faces = frame_count + 1, with_faces + bool(frame.faces)
            if frame.faces:
                self.console.print(video_rows(frame))
        self.console.print(f"{path}: {frame_count} frames, {with_faces} with a face", highlight=False)

    @contextlib.contextmanager
    def progress(self, path: str, unit: str) -> Iterator[ProgressCallback]:
        """A ``progress(done, total)`` of ``path``, counted in ``unit``: a bar while inside, or nothing."""
        if not self.show_progress:
            yield _no_progress
            return
        with progress_bar(self.console) as bar:
            task = bar.add_task(Path(path).name or path, total=None, unit=unit)
            yield lambda done, total: bar.update(task, completed=done, total=total)


class RateColumn(ProgressColumn):
    """How many of the task's unit (its ``unit`` field) go by per second, once rich knows."""

    def render(self, task: Task) -> Text:
        """``12.3 frames/s``, or nothing before the second update."""
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} {task.fields['unit']}/s", style="progress.data.speed")


class CountColumn(ProgressColumn):
    """``120/464 frames`` (``120 frames`` while the total is unknown), as ``fakeblock up``'s bar counts."""

    def render(self, task: Task) -> Text:
        """The count done, of the total when known, in the task's unit."""
        total = "" if task.total is None else f"/{int(task.total)}"
        return Text(f"{int(task.completed)}{total} {task.fields['unit']}", style="progress.download")


class EtaColumn(ProgressColumn):
    """``ETA 0:09``, as ``fakeblock up``'s bar says it; nothing while the total or the rate is unknown."""

    def render(self, task: Task) -> Text:
        """The time left at the current rate."""
        remaining = task.time_remaining
        return Text("" if remaining is None else f"ETA {clock(remaining)}", style="progress.remaining")


def progress_bar(console: Console) -> Progress:
    """A transient bar on ``console``, which prints the rows above it: name, bar, count, rate, time left."""
    name = TextColumn("{task.description}", table_column=Column(max_width=BAR_NAME_CHARS, no_wrap=True,
                                                                overflow="ellipsis"))
    return Progress(name, BarColumn(bar_width=BAR_CHARS), CountColumn(), RateColumn(), EtaColumn(),
                    console=console, transient=True)


def _no_progress(_done: int, _total: int | None) -> None:
    """The progress of a run without a bar."""


def write_json_line(record: Mapping[str, Any]) -> None:
    """One JSON line on stdout, flushed so that a reader has it now, not when the buffer fills."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _box_text(face: Face) -> str:
    x, y, width, height = face.box
    return f"{x},{y} {width}x{height}"


def _face_cells(face: Face, score_count: int) -> tuple[str, str, str]:
    """A face's box, emotion and top scores as table cells."""
    scores = "  ".join(f"{name} {SCORE_FORMAT.format(score)}" for name, score in face.top_scores(score_count))
    return _box_text(face), face.emotion, scores


def _track(face: Face) -> str:
    return "" if face.track is None else str(face.track)


def _table(title: str | None, *columns: str | Column) -> Table:
    return Table(*columns, title=title, box=box.SIMPLE_HEAD, title_justify="left", highlight=False, pad_edge=False,
                 show_edge=False, collapse_padding=True)


def image_table(path: str, faces: Sequence[Face]) -> Table:
    """A table of one image's faces: number, box ``x,y wxh``, emotion, top scores."""
    table = _table(f"{path}: {len(faces)} face{'s' if len(faces) != 1 else ''}", "#", "box x,y wxh", "emotion",
                   "top scores")
    for number, face in enumerate(faces, start=1):
        table.add_row(str(number), *_face_cells(face, IMAGE_TABLE_SCORES))
    return table


def video_table(title: str | None = None, show_header: bool = False) -> Table:
    """An empty table of a video's fixed-width columns: frame, time, track, box, emotion, top scores."""
    columns = [Column(name, min_width=width, no_wrap=True) for name, width in VIDEO_COLUMNS]
    table = _table(title, *columns)
    table.show_header, table.padding = show_header, (0, 0)  # the box puts one space between columns
    return table


def video_rows(frame: FrameResult) -> Table:
    """One frame's faces, a row each, in the columns of the header :func:`video_table` printed."""
    table = video_table()
    for face in frame.faces:
        table.add_row(str(frame.frame), f"{frame.time_s:.2f}", _track(face), *_face_cells(face, VIDEO_TABLE_SCORES))
    return table


def analyze_path(analyzer: Analyzer, spec: str, printer: Printer, max_frames: int | None,
                 folders: Mapping[Path, Sequence[Path]] | None = None) -> None:
    """One command-line path: an image, a folder of images, or what ``--source`` takes.

    ``folders`` holds each folder's images as :func:`check_paths` found them (checked here when None).
    """
    path = Path(spec).expanduser()
    folders = check_paths([spec]) if folders is None else folders
    if path in folders:
        _analyze_folder(analyzer, path, folders[path], printer)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        printer.image(spec, analyzer.analyze(path))
    else:
        with printer.progress(spec, "frames") as progress:
            printer.video(spec, analyzer.analyze_video(spec, max_frames=max_frames, progress=progress))


def _analyze_folder(analyzer: Analyzer, folder: Path, images: Sequence[Path], printer: Printer) -> None:
    """Each image of a folder, the progress counting the skipped ones too.

    One that does not decode is skipped with a warning, and they are counted at the end.
    """
    skipped = 0
    with printer.progress(str(folder), "images") as progress:
        progress(0, len(images))
        for done, image in enumerate(images, start=1):
            try:
                printer.image(str(image), analyzer.analyze(image))
            except UserError as error:
                LOGGER.warning("%s, skipped", error)
                skipped += 1
            progress(done, len(images))
    if skipped:
        LOGGER.warning("%s: %d of %d images could not be decoded and were skipped", folder, skipped, len(images))


def check_paths(paths: Sequence[str]) -> dict[Path, list[Path]]:
    """Refuse, before the model loads, a path that does not exist or a folder none of whose first images decodes.

    Returns each folder's images.  What else can go wrong (an image or video that does not
    decode) shows only once the file is read, which is the analysis itself.
    """
    folders = {}
    for spec in paths:
        path = Path(spec).expanduser()
        if path.is_dir():
            folders[path] = open_image_folder(path, realtime=False).paths
        elif not path.exists() and names_a_file(spec):
            raise UserError(f"{path}: no such file")
    return folders


def run(paths: Sequence[str], options: Mapping[str, Any], as_json: bool = False) -> None:
    """Analyse every path in order with one analyzer made with ``options`` (``max_frames`` for videos)."""
    settings = dict(options)
    max_frames = settings.pop("max_frames", None)
    folders = check_paths(paths)
    printer = Printer(as_json)
    try:
        with Analyzer(**settings) as analyzer:
            for spec in paths:
                analyze_path(analyzer, spec, printer, max_frames, folders)
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(BROKEN_PIPE_EXIT_CODE) from None


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's last flush does not fail on the closed pipe."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: a stdout without a file (a test's runner)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

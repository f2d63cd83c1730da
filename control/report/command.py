"""``fakeblock report``: a results file -> an emotion timeline (PNG) per stream and a per-track summary (CSV).

The timeline shows, at each frame, the mean of the scores (smoothed per track, as the
display showed them) over the faces in view: one line per emotion reads well however many
people pass, where a line per emotion and track would not; with tracks, a band below
shows each track's top emotion while it is in view (``report_plot``).  The summary gives
one row per track (per stream without tracking): when it was first and last seen, in
how many frames, and the share of those frames each emotion was its top one.

The file is streamed and aggregated per frame: a stream keeps its frames' times and mean
scores in compact arrays and each track its stretches of one top emotion, never the lines.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fakeblock.common.errors import UserError
from fakeblock.common.model_io import EMOTION_COUNT, EMOTIONS
from fakeblock.control.report import MIN_TRACK_FRAMES
from fakeblock.control.report.plot import Timeline, TrackBand, plot_timeline
from fakeblock.control.report.reading import FrameRecord, read_records
from fakeblock.display.outputs import stream_path

LOGGER = logging.getLogger(__name__)
SUMMARY_NAME = "summary.csv"
TIMELINE_NAME = "timeline.png"
REPORT_FOLDER_SUFFIX = "-report"
SUMMARY_HEADER = ("stream", "track", "first_frame", "first_seen_s", "last_frame", "last_seen_s", "frames_seen",
                  *(f"share_{name}" for name in EMOTIONS))
TIME_DECIMALS = 3
SHARE_DECIMALS = 4


@dataclass
class TrackSummary:
    """One track of one stream (``track`` None: a stream's faces without tracking), as the CSV row counts it."""

    stream: str
    track: int | None
    first_frame: int
    first_seen_s: float
    last_frame: int
    last_seen_s: float
    frames_seen: int = 0
    top_emotion_frames: list[int] = field(default_factory=lambda: [0] * EMOTION_COUNT)
    # Stretches of consecutive frames with one top emotion: [start_s, end_s, last frame, emotion].
    runs: list[list] = field(default_factory=list)

    def add(self, frame: int, time_s: float, emotion: int) -> None:
        """Count one frame in which the track's top emotion was ``emotion``."""
        if frame < self.first_frame:
            self.first_frame, self.first_seen_s = frame, time_s
        if frame > self.last_frame:
            self.last_frame, self.last_seen_s = frame, time_s
        self.frames_seen += 1
        self.top_emotion_frames[emotion] += 1
        last = self.runs[-1] if self.runs else None
        if last is not None and last[2] == frame - 1 and last[3] == emotion:
            last[1], last[2] = time_s, frame
        else:
            self.runs.append([time_s, time_s, frame, emotion])

    def row(self) -> list[str]:
        """This track's CSV row, in SUMMARY_HEADER order."""
        shares = [f"{count / self.frames_seen:.{SHARE_DECIMALS}f}" for count in self.top_emotion_frames]
        return [self.stream, "" if self.track is None else str(self.track), str(self.first_frame),
                f"{self.first_seen_s:.{TIME_DECIMALS}f}", str(self.last_frame), f"{self.last_seen_s:.{TIME_DECIMALS}f}",
                str(self.frames_seen), *shares]


@dataclass
class StreamSeries:
    """One stream's frames: number, time and mean score per emotion over its faces (NaN without a face)."""

    name: str
    frames: array = field(default_factory=lambda: array("q"))
    times_s: array = field(default_factory=lambda: array("d"))
    mean_scores: array = field(default_factory=lambda: array("f"))
    face_frames: int = 0
    out_of_order: int = 0
    tracks: dict[int | None, TrackSummary] = field(default_factory=dict)

    def add(self, record: FrameRecord) -> None:
        """Take in one line of this stream."""
        if self.frames and record.frame <= self.frames[-1]:
            self.out_of_order += 1
        self.frames.append(record.frame)
        self.times_s.append(record.time_s)
        if record.faces:
            totals = np.sum([face.scores for face in record.faces], axis=0)
            self.mean_scores.extend((totals / len(record.faces)).tolist())
        else:
            self.mean_scores.extend([float("nan")] * EMOTION_COUNT)
        self.face_frames += len(record.faces)
        for face in record.faces:
            summary = self.tracks.get(face.track)
            if summary is None:
                summary = self.tracks[face.track] = TrackSummary(self.name, face.track, record.frame, record.time_s,
                                                                 record.frame, record.time_s)
            summary.add(record.frame, record.time_s, face.emotion)

    def summaries(self, min_track_frames: int = 1) -> list[TrackSummary]:
        """The stream's tracks seen in at least ``min_track_frames`` frames, by number (faces without a track last)."""
        kept = [summary for summary in self.tracks.values()
                if summary.track is None or summary.frames_seen >= min_track_frames]
        return sorted(kept, key=lambda summary: (summary.track is None, summary.track or 0))

    def short_tracks(self, min_track_frames: int) -> int:
        """How many tracks were seen in fewer than ``min_track_frames`` frames."""
        return sum(1 for summary in self.tracks.values()
                   if summary.track is not None and summary.frames_seen < min_track_frames)

    def timeline(self, min_track_frames: int = 1) -> Timeline:
        """What the plot shows, in frame order (the band: tracks seen in ``min_track_frames`` frames or more)."""
        order = np.argsort(np.frombuffer(self.frames, dtype=np.int64), kind="stable")
        times_s = np.frombuffer(self.times_s, dtype=np.float64)[order]
        scores = np.frombuffer(self.mean_scores, dtype=np.float32).reshape(-1, EMOTION_COUNT)[order]
        bands = [TrackBand(summary.track, summary.frames_seen, [(run[0], run[1], run[3]) for run in summary.runs])
                 for summary in self.summaries(min_track_frames) if summary.track is not None]
        return Timeline(self.name, times_s, scores.astype(np.float64), bands, len(bands))


def aggregate(records: Iterable[FrameRecord]) -> dict[str, StreamSeries]:
    """Every stream's series and track summaries, by stream name in the order the streams first appear."""
    streams: dict[str, StreamSeries] = {}
    for record in records:
        series = streams.get(record.stream)
        if series is None:
            series = streams[record.stream] = StreamSeries(record.stream)
        series.add(record)
    return streams


def summary_rows(streams: dict[str, StreamSeries], min_track_frames: int = 1) -> list[list[str]]:
    """The summary table's rows (without the header): one per track, or per stream without tracks.

    Tracks seen in fewer than ``min_track_frames`` frames are left out.  A stream in which
    no face was seen (or only such tracks) gets one row with 0 frames seen and nothing else.
    """
    rows: list[list[str]] = []
    for series in streams.values():
        summaries = series.summaries(min_track_frames)
        rows.extend(summary.row() for summary in summaries)
        if not summaries:
            rows.append([series.name, "", "", "", "", "", "0", *[""] * EMOTION_COUNT])
    return rows


def write_summary(rows: list[list[str]], path: Path) -> Path:
    """Write the summary table (SUMMARY_HEADER, then ``rows``) as CSV at ``path``; returns ``path``."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(SUMMARY_HEADER)
        writer.writerows(rows)
    return path


def default_output(results: Path) -> Path:
    """Where a report goes without ``--output``: ``r.jsonl`` -> ``r-report/`` beside it."""
    return results.with_name(results.stem + REPORT_FOLDER_SUFFIX)


def timeline_paths(folder: Path, streams: Iterable[str]) -> dict[str, Path]:
    """Each stream's PNG: ``timeline-<stream>.png``, named as recordings are; clashing safe names get -2, -3, ..."""
    paths: dict[str, Path] = {}
    for stream in streams:
        named = Path(stream_path(str(folder / TIMELINE_NAME), stream))
        path, count = named, 1
        while path in paths.values():
            count += 1
            path = named.with_name(f"{named.stem}-{count}{named.suffix}")
        paths[stream] = path
    return paths


def _make_folder(folder: Path) -> None:
    """Create the output folder (and its parents), or a UserError saying why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{folder}: exists and is not a folder (choose another --output)") from None
    except OSError as error:
        raise UserError(f"{folder}: cannot create the report folder ({error.strerror})") from None


@contextlib.contextmanager
def _writing(path: Path):
    """Turn a failure to write ``path`` (no space, no permission) into a UserError naming it."""
    try:
        yield
    except OSError as error:
        raise UserError(f"{path}: cannot write it ({error.strerror or error})") from None


def write_report(results: Path, output: Path | None = None, min_track_frames: int = MIN_TRACK_FRAMES) -> list[Path]:
    """Read ``results`` and write its timelines and summary into ``output``; returns the files written.

    Tracks seen in fewer than ``min_track_frames`` frames are left out of the bands and the
    summary, and counted in the log; the timeline's mean scores still include their faces.
    """
    streams = aggregate(read_records(results))
    for series in streams.values():
        if short := series.short_tracks(min_track_frames):
            LOGGER.info("stream %s: %d track%s seen in fewer than %d frames left out (--all-tracks keeps them)",
                        series.name, short, "s" * (short != 1), min_track_frames)
    folder = output if output is not None else default_output(results)
    _make_folder(folder)
    written: list[Path] = []
    for stream, path in timeline_paths(folder, streams).items():
        series = streams[stream]
        if series.out_of_order:
            LOGGER.warning("stream %s: %d lines repeat or go back in frame number (are two runs in one file?); "
                           "plotted in frame order", stream, series.out_of_order)
        with _writing(path):
            written.append(plot_timeline(series.timeline(min_track_frames), path))
    summary_path = folder / SUMMARY_NAME
    with _writing(summary_path):
        written.append(write_summary(summary_rows(streams, min_track_frames), summary_path))
    return written

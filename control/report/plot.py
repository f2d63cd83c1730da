"""The emotion timeline of one stream as a PNG, drawn with matplotlib's Agg canvas.

The top panel has one line per emotion: the mean score over the faces in view at each
frame, against the frame's time in seconds; frames without a face are gaps, shaded grey.
With tracks, a band below gives every track a row coloured by its top emotion while it
is in view, so who was there, and how each one looked, reads off the same time axis.
Colours follow the Okabe-Ito palette, which stays distinct for colour-blind readers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fakeblock.common.model_io import EMOTIONS

# Okabe-Ito colours, one per emotion in EMOTIONS order; neutral in grey, as the quiet baseline.
EMOTION_COLOURS = {"angry": "#D55E00", "disgust": "#009E73", "fear": "#CC79A7", "happy": "#E69F00",
                   "sad": "#0072B2", "surprise": "#56B4E9", "neutral": "#5F5F5F"}
NO_FACE_COLOUR = "#E4E4E4"
FIGURE_WIDTH_IN = 12.0
SCORES_HEIGHT_IN = 4.2
TRACK_ROW_HEIGHT_IN = 0.3
TITLE_HEIGHT_IN = 1.0
DPI = 100
LINE_WIDTH_PT = 1.5
# More frames than this are averaged in equal bins before drawing: a line has no more
# detail than the figure has pixels, and hours of video stay quick to draw.
MAX_PLOTTED_POINTS = 2000
MAX_TRACK_ROWS = 12
# A run's bar reaches half a frame into the next, which is drawn over it: times are rounded
# to milliseconds, and bars exactly a median frame wide leave hairline seams between runs.
RUN_OVERLAP = 1.5


class TrackBand(NamedTuple):
    """One track's row of the band: stretches of one top emotion as (start_s, end_s, emotion index)."""

    track: int
    frames_seen: int
    runs: Sequence[tuple[float, float, int]]


class Timeline(NamedTuple):
    """What one stream's plot shows: per frame its time and mean scores (NaN without a face), and the tracks."""

    stream: str
    times_s: np.ndarray
    mean_scores: np.ndarray
    bands: Sequence[TrackBand]
    track_count: int


def binned(times_s: np.ndarray, mean_scores: np.ndarray, max_points: int = MAX_PLOTTED_POINTS):
    """``times_s`` and ``mean_scores`` averaged over equal bins of frames, at most ``max_points`` of them.

    A bin keeps the mean of its frames with a face; a bin without any stays NaN (a gap).
    """
    frames = len(times_s)
    if frames <= max_points:
        return times_s, mean_scores
    size = -(-frames // max_points)
    padding = size * -(-frames // size) - frames
    times = np.concatenate([times_s, np.full(padding, np.nan)]).reshape(-1, size)
    scores = np.concatenate([mean_scores, np.full((padding, mean_scores.shape[1]), np.nan)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an all-gap bin is NaN, as wanted
        binned_scores = np.nanmean(scores.reshape(-1, size, mean_scores.shape[1]), axis=1)
    return np.nanmean(times, axis=1), binned_scores


def frame_interval_s(times_s: np.ndarray) -> float:
    """The usual time between two frames (the median step), for the width of one frame on the axis."""
    steps = np.diff(times_s)
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else 1.0


def no_face_spans(times_s: np.ndarray, has_face: np.ndarray) -> list[tuple[float, float]]:
    """(start_s, width_s) of every stretch without a face, from the last face before to the first after."""
    padded = np.concatenate([[False], ~has_face, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    last = len(times_s) - 1
    spans = []
    for first, end in zip(edges[::2], edges[1::2], strict=True):
        start_s, stop_s = times_s[max(first - 1, 0)], times_s[min(end, last)]
        spans.append((float(start_s), float(stop_s - start_s)))
    return spans


def _draw_scores(axes: Axes, timeline: Timeline) -> None:
    """The emotion lines, the grey no-face stretches and the score axis."""
    has_face = ~np.isnan(timeline.mean_scores[:, 0])
    axes.broken_barh(no_face_spans(timeline.times_s, has_face), (0.0, 1.0), facecolors=NO_FACE_COLOUR,
                     linewidth=0)
    times_s, scores = binned(timeline.times_s, timeline.mean_scores)
    for index, name in enumerate(EMOTIONS):
        axes.plot(times_s, scores[:, index], color=EMOTION_COLOURS[name], linewidth=LINE_WIDTH_PT, label=name)
    if not has_face.any():
        axes.text(0.5, 0.5, "no face in this stream", transform=axes.transAxes, ha="center", va="center")
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel("score (mean over faces, 0-1)")
    axes.set_axisbelow(True)
    axes.grid(True, color="#D0D0D0", linewidth=0.6)
    handles = [Patch(color=EMOTION_COLOURS[name], label=name) for name in EMOTIONS]
    if not has_face.all():
        handles.append(Patch(color=NO_FACE_COLOUR, label="no face"))
    axes.legend(handles=handles, title="emotion", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _shown_bands(bands: Sequence[TrackBand]) -> list[TrackBand]:
    """The longest-seen tracks, at most MAX_TRACK_ROWS, in the order they first appear."""
    longest = sorted(bands, key=lambda band: -band.frames_seen)[:MAX_TRACK_ROWS]
    return sorted(longest, key=lambda band: band.runs[0][0] if band.runs else 0.0)


def _draw_bands(axes: Axes, timeline: Timeline, interval_s: float) -> None:
    """One row per track, coloured by its top emotion while it is in view."""
    shown = _shown_bands(timeline.bands)
    for row, band in enumerate(shown):
        axes.broken_barh([(start_s, end_s - start_s + interval_s * RUN_OVERLAP) for start_s, end_s, _ in band.runs],
                         (row - 0.4, 0.8), linewidth=0,
                         facecolors=[EMOTION_COLOURS[EMOTIONS[emotion]] for _, _, emotion in band.runs])
    axes.set_yticks(range(len(shown)), [f"track {band.track}" for band in shown])
    axes.set_ylim(len(shown) - 0.5, -0.5)
    hidden = timeline.track_count - len(shown)
    title = "top emotion of each track while in view"
    if hidden:
        title += f" (the {len(shown)} longest-seen of {timeline.track_count} tracks; all are in summary.csv)"
    axes.set_title(title, loc="left", fontsize="small", color="#404040")
    axes.set_axisbelow(True)
    axes.grid(True, axis="x", color="#D0D0D0", linewidth=0.6)


def _subtitle(timeline: Timeline) -> str:
    """Frames, seconds, frames with a face and tracks, in one line."""
    frames = len(timeline.times_s)
    with_face = int((~np.isnan(timeline.mean_scores[:, 0])).sum())
    span_s = float(timeline.times_s[-1] - timeline.times_s[0]) if frames else 0.0
    tracks = f", {timeline.track_count} track{'s' * (timeline.track_count != 1)}" if timeline.track_count else ""
    return f"{frames} frames over {span_s:.1f} s, {with_face} with a face{tracks}"


def plot_timeline(timeline: Timeline, path: Path) -> Path:
    """Draw ``timeline`` and save it as a PNG at ``path``; returns ``path``."""
    rows = len(_shown_bands(timeline.bands))
    band_height_in = TRACK_ROW_HEIGHT_IN * rows + 0.2 if rows else 0.0
    figure = Figure(figsize=(FIGURE_WIDTH_IN, TITLE_HEIGHT_IN + SCORES_HEIGHT_IN + band_height_in), dpi=DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    if rows:
        scores_axes, band_axes = figure.subplots(2, 1, sharex=True,
                                                 height_ratios=[SCORES_HEIGHT_IN, band_height_in])
    else:
        scores_axes, band_axes = figure.subplots(1, 1), None
    interval_s = frame_interval_s(timeline.times_s)
    _draw_scores(scores_axes, timeline)
    if band_axes is not None:
        _draw_bands(band_axes, timeline, interval_s)
    bottom = band_axes if band_axes is not None else scores_axes
    bottom.set_xlabel("time in the video (s)")
    if len(timeline.times_s):
        scores_axes.set_xlim(float(timeline.times_s[0]), float(timeline.times_s[-1]) + interval_s)
    figure.suptitle(f"Emotion timeline: {timeline.stream}", fontsize="x-large", fontweight="bold")
    scores_axes.set_title(_subtitle(timeline), fontsize="medium", color="#404040")
    figure.savefig(path, format="png")
    return path

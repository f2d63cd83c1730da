"""How far a replay is: per-stream progress figures from heartbeats, and the line printed at exit.

Each capture's heartbeat carries ``frames_total`` (when its source knows its length) and
``frames_out``; the display's carries ``results_written``.  With one stream the frames done
are the display's results written (a frame is done once its result is out); with several,
the display's count is shared, so each stream counts the frames its capture sent.  The
rate is the mean since the capture started (its ``uptime_s``), and the ETA what is left
at that rate.  The figures are pure functions of the counters, so tests need no pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table

from fakeblock.common.counters import FRAMES_OUT, FRAMES_TOTAL, RESULTS_WRITTEN, UPTIME_S
from fakeblock.common.wording import plural, worker_labels

CAPTURE_PREFIX = "capture/"
DISPLAY_NAME = "display/0"
BAR_WIDTH_CHARS = 16
NAME_MAX_CHARS = 18  # a longer source name is cut: name, bar and figures of up to 9999 frames fit 80 columns
READ_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class StreamProgress:
    """One stream's frames done (of ``frames_total`` when known) after ``elapsed_s`` seconds.

    ``name`` is its capture as people read it: ``capture``, or ``capture/1`` among several.
    """

    name: str
    frames_done: int
    frames_total: int | None
    elapsed_s: float

    @property
    def fraction(self) -> float | None:
        """Share done, 0 to 1, or None when the length is unknown."""
        if not self.frames_total:
            return None
        return min(1.0, self.frames_done / self.frames_total)

    @property
    def frames_per_s(self) -> float:
        """Mean frames per second since the stream started."""
        return self.frames_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the mean rate; None without a length or before the first frame."""
        if self.frames_total is None or self.frames_per_s <= 0:
            return None
        return max(0, self.frames_total - self.frames_done) / self.frames_per_s


def stream_progress(counters_by_worker: dict[str, dict[str, float]],
                    sources: dict[str, str] | None = None) -> list[StreamProgress]:
    """The progress of every capture in ``counters_by_worker`` (worker name -> latest heartbeat counters),
    each named by what it reads (``sources``: worker name -> ``office-woman.mp4``), else by its stage."""
    captures = sorted(name for name in counters_by_worker if name.startswith(CAPTURE_PREFIX))
    labels = worker_labels(captures) | {name: source for name, source in (sources or {}).items() if name in captures}
    display = counters_by_worker.get(DISPLAY_NAME)
    progress = []
    for name in captures:
        counters = counters_by_worker[name]
        done = counters.get(FRAMES_OUT, 0)
        if len(captures) == 1 and display is not None and RESULTS_WRITTEN in display:
            done = min(done, display[RESULTS_WRITTEN])
        total = counters.get(FRAMES_TOTAL)
        progress.append(StreamProgress(labels[name], int(done), int(total) if total is not None else None,
                                       counters.get(UPTIME_S, 0.0)))
    return progress


def finished_streams(progresses: list[StreamProgress]) -> list[StreamProgress]:
    """The streams that reached their known end: the last redraw keeps only their bars, since
    a bar stopped short (Ctrl-C, a failed run) would stay on screen with an ETA that never comes."""
    return [progress for progress in progresses if progress.fraction == 1.0]


def clock(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), or ``-:--`` when unknown."""
    if seconds is None:
        return "-:--"
    minutes, whole_seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{whole_seconds:02d}" if hours else f"{minutes}:{whole_seconds:02d}"


def figures_text(progress: StreamProgress) -> str:
    """``120/464 frames 26% 28.6 frames/s ETA 0:12`` (frames and rate only for a source of unknown length)."""
    rate = f"{progress.frames_per_s:.1f} frames/s"
    if progress.fraction is None:
        return f"{plural(progress.frames_done, 'frame')} {rate}"
    return (f"{progress.frames_done}/{progress.frames_total} frames {progress.fraction:.0%} {rate} "
            f"ETA {clock(progress.eta_s)}")


def progress_line(progresses: list[StreamProgress]) -> str:
    """The log line without a terminal: ``progress: capture 120/464 frames 26% ...`` (``capture/0 ...;
    capture/1 ...`` with several captures)."""
    return "progress: " + "; ".join(f"{progress.name} {figures_text(progress)}" for progress in progresses)


def progress_bars(progresses: list[StreamProgress]) -> RenderableType:
    """One line per stream: name, bar (when the length is known) and figures; fits 80 columns."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, max_width=NAME_MAX_CHARS, overflow="ellipsis")
    grid.add_column(width=BAR_WIDTH_CHARS)
    grid.add_column(overflow="fold")
    for progress in progresses:
        bar = "" if progress.fraction is None else ProgressBar(total=progress.frames_total,
                                                                completed=progress.frames_done,
                                                                width=BAR_WIDTH_CHARS)
        grid.add_row(progress.name, bar, figures_text(progress))
    return grid


def with_progress(progresses: list[StreamProgress], table: RenderableType) -> RenderableType:
    """The live view: the progress bars (when a stream has started) above the stage table."""
    return Group(progress_bars(progresses), table) if progresses else table


def count_lines(path: str) -> int | None:
    """Lines in the file at ``path``, or None when it cannot be read."""
    lines = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(READ_CHUNK_BYTES):
                lines += chunk.count(b"\n")
    except OSError:
        return None
    return lines


@dataclass(frozen=True)
class WrittenFile:
    """A file the run wrote and, when known, how much is in it (``464 lines``)."""

    path: str
    amount: str | None = None


def end_summary(frames: int, seconds: float, written: list[WrittenFile], stopped: bool = False) -> str:
    """``done: 464 frames in 16.2 s (28.6 frames/s); results.jsonl: 464 lines; stats.json``.

    ``stopped`` (a signal ended the run before its end): ``stopped: 160 frames ...``, so the
    line does not call done what the next line calls interrupted.
    """
    rate = frames / seconds if seconds > 0 else 0.0
    parts = [f"{'stopped' if stopped else 'done'}: {plural(frames, 'frame')} in {seconds:.1f} s ({rate:.1f} frames/s)"]
    parts += [f"{file.path}: {file.amount}" if file.amount else file.path for file in written]
    return "; ".join(parts)


def written_files(results: str | None, record: str | None, recorded_frames: int | None,
                  stats: str | None) -> list[WrittenFile]:
    """The files a run wrote: the results (with its lines), the recording (its frames) and the stats."""
    written = []
    if results and Path(results).is_file():
        lines = count_lines(results)
        written.append(WrittenFile(results, None if lines is None else plural(lines, "line")))
    if record and Path(record).is_file():
        written.append(WrittenFile(record, None if recorded_frames is None else plural(recorded_frames, "frame")))
    if stats and Path(stats).is_file():
        written.append(WrittenFile(stats))
    return written

"""The supervisor's view of its stages: a live rich table and the ``--stats`` summary."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from rich import box
from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fakeblock.common import wire
from fakeblock.common.config import PipelineConfig
from fakeblock.common.counters import (
    BATCH_SIZE,
    DROPPED,
    FRAMES_IN,
    FRAMES_OUT,
    IDLE_S,
    LATENCY_BY_PERCENTILE,
    LATENCY_P95_MS,
    MALFORMED,
    RESULTS_IN,
    RESULTS_WRITTEN,
    UPTIME_S,
)
from fakeblock.common.runtime import IDLE_WARNING_S
from fakeblock.common.stages import STAGE_NAMES
from fakeblock.common.wording import IN_PER_S, OUT_PER_S, rates, stage_of, worker_labels
from fakeblock.control.status.discovery import source_description
from fakeblock.control.status.replay_progress import (
    DISPLAY_NAME,
    StreamProgress,
    end_summary,
    finished_streams,
    progress_line,
    stream_progress,
    with_progress,
    written_files,
)
from fakeblock.control.status.stderr_relay import StderrRelay
from fakeblock.control.status.table import DROP_COUNTERS, queue_depth

LOGGER = logging.getLogger(__name__)
REFRESH_INTERVAL_S = 0.5
LOG_INTERVAL_S = 10.0
PROGRESS_LOG_INTERVAL_S = 5.0
LIVE_COLUMNS = ("stage", "state", IN_PER_S, OUT_PER_S, "queue", "drops", "batch", "p95 ms", "restarts")
SILENT_AFTER_S = 3.0
DEFAULT_RATE_COUNTERS = (FRAMES_IN, FRAMES_OUT)
# The display's frames in and out are pixels for drawing; its throughput is results.
RATE_COUNTERS = {"display": (RESULTS_IN, RESULTS_WRITTEN)}


class StatusBoard:
    """Latest heartbeat and rates per stage worker."""

    def __init__(self, config: PipelineConfig, names: list[str]):
        self.config = config
        self.names = names
        self.latest: dict[str, wire.Status] = {}
        self.received_s: dict[str, float] = {}
        self.rates: dict[str, tuple[float, float]] = {}
        self.restarts: dict[str, int] = {name: 0 for name in names}
        self.malformed = 0
        # What each local capture reads, to name its progress bar: "office-woman.mp4", not "capture".
        self.sources = {wire.worker_name("capture", slot.index):
                        source_description(slot.config.source, slot.config.stream) for slot in config.capture_slots()}
        self.started_s = time.monotonic()
        self._live: Live | None = None
        self._next_refresh_s = 0.0
        self._next_log_s = LOG_INTERVAL_S
        self._next_progress_log_s = PROGRESS_LOG_INTERVAL_S
        self._last_logged_done: tuple[int, ...] = ()
        self._last_view: tuple = ([], None)  # refresh's arguments, for the view's last redraw
        self.sources_started_s: float | None = None  # when the first capture started, from its uptime
        # Set by a signal that ends the run before its end: stages that stop from then on
        # read "stopped", those that had ended by themselves stay "done".
        self.interrupted = False
        self._ended_before_interruption: frozenset[str] = frozenset()

    def update(self, status: wire.Status) -> None:
        """Record a heartbeat; frames/s come from the change since the previous one."""
        name, now_s = status.name, time.monotonic()
        previous, previous_s = self.latest.get(name), self.received_s.get(name)
        # latest and received_s are written together: both are None or neither is.
        if (previous is not None and previous_s is not None and previous.pid == status.pid
                and now_s - previous_s > 0.05):
            elapsed_s = now_s - previous_s
            in_per_s, out_per_s = (
                max(0.0, status.counters.get(key, 0) - previous.counters.get(key, 0)) / elapsed_s
                for key in RATE_COUNTERS.get(status.stage, DEFAULT_RATE_COUNTERS))
            self.rates[name] = (in_per_s, out_per_s)
        if status.stage == "capture" and self.sources_started_s is None:
            self.sources_started_s = now_s - status.counters.get(UPTIME_S, 0.0)
        self.latest[name], self.received_s[name] = status, now_s

    def note_interruption(self, ended: Iterable[str]) -> None:
        """A signal ended the run before its end; ``ended``: the workers that had finished by themselves."""
        self.interrupted = True
        self._ended_before_interruption = frozenset(ended)

    def note_restart(self, name: str) -> None:
        """Count a restart of a stage worker."""
        self.restarts[name] = self.restarts.get(name, 0) + 1

    @contextlib.contextmanager
    def live(self, enabled: bool):
        """Show the view live on a terminal, every stderr line above it; log a line now and then otherwise."""
        if not (enabled and sys.stderr.isatty()):
            yield
            return
        relay = StderrRelay()
        try:
            console = Console(file=relay.terminal)
            with Live(self.view([]), console=console, refresh_per_second=4, transient=False) as live:
                relay.print_line = lambda line: live.console.print(Text(line.rstrip("\n")))
                self._live = live
                try:
                    yield
                finally:
                    self._live = None
                    # The figures at the end; a bar whose stream stopped short goes (no frozen ETA).
                    workers, supervisor_counters = self._last_view
                    live.update(with_progress(finished_streams(self.progress()),
                                              self.table(workers, supervisor_counters)), refresh=True)
        finally:
            relay.restore()

    def refresh(self, workers, supervisor_counters: dict[str, float] | None = None) -> None:
        """Redraw (at most every ``REFRESH_INTERVAL_S``) or log a summary line."""
        now_s = time.monotonic()
        self._last_view = (workers, supervisor_counters)
        if self._live is not None and now_s >= self._next_refresh_s:
            self._next_refresh_s = now_s + REFRESH_INTERVAL_S
            self._live.update(self.view(workers, supervisor_counters))
            return
        if self._live is not None:
            return
        elapsed_s = now_s - self.started_s
        if elapsed_s >= self._next_log_s:
            self._next_log_s += LOG_INTERVAL_S
            LOGGER.info("status: %s", "; ".join(self.summary_line(name) for name in self.names))
        if elapsed_s >= self._next_progress_log_s:
            self._next_progress_log_s = elapsed_s + PROGRESS_LOG_INTERVAL_S
            progresses = self.progress()
            if progresses and self._progress_moved(progresses):
                LOGGER.info("%s", progress_line(progresses))

    def _progress_moved(self, progresses: list[StreamProgress]) -> bool:
        """True when some stream's frames done changed since the last progress line (a finished replay goes quiet)."""
        done = tuple(progress.frames_done for progress in progresses)
        moved, self._last_logged_done = done != self._last_logged_done, done
        return moved

    def summary_line(self, name: str) -> str:
        """``detect 29.6 in/s, 28.8 out/s`` for logs (the worker id only when its stage has several)."""
        rate_in, rate_out = self.rates.get(name, (0.0, 0.0))
        return f"{worker_labels(self.names)[name]} {rates(rate_in, rate_out)}"

    def state(self, name: str, alive: bool, now_s: float) -> str:
        """``running``, ``idle`` (alive, no input), ``silent`` (no heartbeat), ``starting``, ``done``, or
        ``stopped`` (ended by an interruption: the run did not reach its end)."""
        status = self.latest.get(name)
        if not alive:
            return self._ended_state(name)
        if status is None:
            return "starting" if now_s - self.started_s <= SILENT_AFTER_S else "silent"
        if now_s - self.received_s[name] > SILENT_AFTER_S:
            return "silent"
        return "idle" if status.counters.get(IDLE_S, 0) > IDLE_WARNING_S else "running"

    def worker_state(self, worker, now_s: float) -> str:
        """:meth:`state` of a supervised worker: ``restarting`` while a crashed one waits for its
        restart, ``starting`` for a source not started yet (never ``done`` before it began) and a
        restarted worker before its first heartbeat."""
        status = self.latest.get(worker.name)
        alive = worker.alive()
        state = self.state(worker.name, alive, now_s)
        if not alive and not worker.finished and worker.exit_code is not None:
            state = "restarting"
        pid = worker.process.pid if worker.process is not None and worker.process.pid else 0
        if worker.process is None and not worker.finished:  # a source an interruption kept from starting
            state = self._ended_state(worker.name) if self.interrupted else "starting"
        elif alive and status is not None and status.pid != pid:
            state = "starting"
        return state

    def _ended_state(self, name: str) -> str:
        """``stopped`` for a worker ended by an interruption, ``done`` for one that finished by itself."""
        return "stopped" if self.interrupted and name not in self._ended_before_interruption else "done"

    def table(self, workers, supervisor_counters: dict[str, float] | None = None) -> Table:
        """One row per stage worker: state, rates, queue, drops, batch, latency, restarts; the supervisor's own below.

        Short headers and no borders between columns keep it whole at 80 columns.
        """
        by_name = {worker.name: worker for worker in workers}
        labels = worker_labels(self.names)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
        table.caption = supervisor_caption(supervisor_counters or {})
        for column in LIVE_COLUMNS:
            table.add_column(column, justify="left" if column in ("stage", "state") else "right", overflow="fold")
        now_s = time.monotonic()
        for name in sorted(self.names, key=_pipeline_position):
            status = self.latest.get(name)
            counters = status.counters if status else {}
            worker = by_name.get(name)
            state = self.state(name, True, now_s) if worker is None else self.worker_state(worker, now_s)
            rate_in, rate_out = self.rates.get(name, (0.0, 0.0))
            drops = sum(counters.get(counter, 0) for counter in DROP_COUNTERS)
            table.add_row(labels[name], state, f"{rate_in:.1f}", f"{rate_out:.1f}", f"{queue_depth(counters):.0f}",
                          f"{drops:.0f}", f"{counters[BATCH_SIZE]:.0f}" if BATCH_SIZE in counters else "",
                          f"{counters[LATENCY_P95_MS]:.0f}" if LATENCY_P95_MS in counters else "",
                          str(self.restarts.get(name, 0)))
        return table

    def view(self, workers, supervisor_counters: dict[str, float] | None = None) -> RenderableType:
        """The live view: each stream's progress bar above :meth:`table`."""
        return with_progress(self.progress(), self.table(workers, supervisor_counters))

    def progress(self) -> list[StreamProgress]:
        """Every local capture's progress, from the latest heartbeats."""
        return stream_progress({name: dict(status.counters) for name, status in self.latest.items()},
                               self.sources)

    def end_summary(self, stopped: bool = False) -> str | None:
        """The line at exit (frames, seconds, frames/s, files written), or None when no display ran here.

        ``stopped``: a signal ended the run before its end (the line says so instead of "done").
        """
        display = self.latest.get(DISPLAY_NAME)
        if display is None:
            return None
        started_s = self.sources_started_s if self.sources_started_s is not None else self.started_s
        counters = display.counters
        record_frames = counters.get(FRAMES_OUT)
        written = written_files(self.config.display.results, self.config.display.record,
                                None if record_frames is None else int(record_frames), self.config.stats)
        return end_summary(int(counters.get(RESULTS_WRITTEN, 0)), time.monotonic() - started_s, written, stopped)

    def reports(self, workers) -> tuple[wire.WorkerReport, ...]:
        """Every worker's state, rates and latest counters, for a ``fakeblock status`` answer."""
        now_s = time.monotonic()
        reports = []
        for worker in workers:
            status = self.latest.get(worker.name)
            alive = worker.alive()
            state = self.worker_state(worker, now_s)
            pid = worker.process.pid if worker.process is not None and worker.process.pid else 0
            rate_in, rate_out = self.rates.get(worker.name, (0.0, 0.0)) if alive else (0.0, 0.0)
            reports.append(wire.WorkerReport(worker.stage, worker.worker, pid, alive, state,
                                             self.restarts.get(worker.name, 0), rate_in, rate_out,
                                             dict(status.counters) if status else {}))
        return tuple(reports)

    def stats(self, workers, supervisor_counters: dict[str, float] | None = None) -> dict:
        """The summary written by ``--stats``; ``supervisor_counters`` are the supervisor's own."""
        duration_s = time.monotonic() - self.started_s
        per_stage = {name: dict(status.counters) for name, status in sorted(self.latest.items())}
        captures = [counters for name, counters in per_stage.items() if name.startswith("capture/")]
        display = per_stage.get("display/0", {})
        frames_out = display.get(RESULTS_WRITTEN, display.get(RESULTS_IN, 0))
        return {
            "frames_in": sum(counters.get(FRAMES_IN, 0) for counters in captures),
            "frames_out": frames_out,
            "dropped": {name: counters.get(DROPPED, 0) for name, counters in per_stage.items()},
            "malformed": {name: counters.get(MALFORMED, 0) for name, counters in per_stage.items()},
            "duration_s": round(duration_s, 3),
            "throughput_fps": round(frames_out / duration_s, 2) if duration_s > 0 else 0.0,
            "latency_ms": {key: display.get(name) for key, name in LATENCY_BY_PERCENTILE.items()},
            "restarts": self.restarts,
            "supervisor": dict(supervisor_counters or {}),
            "exit_codes": {worker.name: worker.exit_code for worker in workers},
            "stages": per_stage,
            "options": _jsonable(asdict(self.config)),
        }

    def write_stats(self, path: str | None, workers, supervisor_counters: dict[str, float] | None = None) -> None:
        """Write :meth:`stats` as JSON when a path was given."""
        if not path:
            return
        Path(path).write_text(json.dumps(self.stats(workers, supervisor_counters), indent=2) + "\n")
        LOGGER.info("wrote stats to %s", path)


def supervisor_caption(counters: dict[str, float]) -> str | None:
    """``supervisor: malformed heartbeats 2`` under the table: only the counters that are not 0, else nothing."""
    shown = [f"{name.replace('_', ' ')} {value:.0f}" for name, value in counters.items() if value]
    return "supervisor: " + ", ".join(shown) if shown else None


def _pipeline_position(name: str) -> tuple[int, str]:
    """Where a ``stage/worker`` row goes: in pipeline order (capture first), then by name."""
    stage = stage_of(name)
    return (STAGE_NAMES.index(stage) if stage in STAGE_NAMES else len(STAGE_NAMES), name)


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)

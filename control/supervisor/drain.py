"""How long the supervisor's drain waits: while it makes progress, read from the heartbeats.

A first Ctrl-C or SIGTERM orders "finish": sources end their streams and what is in
flight drains into the results.  The drain is worth waiting for only while something
moves toward its end, so it ends as soon as nothing has for ``DRAIN_QUIET_S``, and in any
case after ``DRAIN_TIMEOUT_S``.  What counts as progress depends on what runs here:

- on a host with the sink or a source: the sink's results written and the sources'
  frames sent (a stage that is down, or work lost with it, shows as no progress);
- on a host of workers only (detect, queue, classify): the frames its workers pass on,
  so that when a whole deployment is stopped at once the workers hand what they hold to
  the display elsewhere and then stop; a worker host stopped alone while its front keeps
  sending stops at ``DRAIN_TIMEOUT_S`` (or at once on a second signal).

Heartbeats come every ``HEARTBEAT_INTERVAL_S`` (0.5 s); a quiet time of three intervals
never mistakes one late heartbeat for a stall, and with the stages' own stop (well under
a second when nothing is in flight) the run ends within 3 s of its last progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fakeblock.common import wire
from fakeblock.common.counters import COMPLETE, FRAMES_OUT, FRAMES_TOTAL, RESULTS_WRITTEN
from fakeblock.common.runtime import HEARTBEAT_INTERVAL_S
from fakeblock.common.stages import SINK, SOURCE
from fakeblock.common.wording import plural

DRAIN_QUIET_S = 3 * HEARTBEAT_INTERVAL_S
DRAIN_TIMEOUT_S = 15.0


def progress_counters(workers: Iterable) -> dict[str, str]:
    """Worker name -> the counter whose growth is the drain's progress (see the module docstring)."""
    workers = list(workers)
    ends = {worker.name: RESULTS_WRITTEN if worker.role == SINK else FRAMES_OUT
            for worker in workers if worker.role in (SOURCE, SINK)}
    return ends or {worker.name: FRAMES_OUT for worker in workers}


class ProgressWatch:
    """When the watched counters last grew, from the latest heartbeat of each worker."""

    def __init__(self, counters: Mapping[str, str], latest: Mapping[str, wire.Status], now_s: float):
        self.counters = dict(counters)
        self.last_progress_s = now_s
        self._seen: dict[str, tuple[int, float]] = {}
        self.note(latest, now_s)  # the baseline: what was done before the drain is not progress
        self.last_progress_s = now_s

    def note(self, latest: Mapping[str, wire.Status], now_s: float) -> bool:
        """Compare the latest heartbeats with those seen before; True (and the clock reset) if anything grew.

        A restarted worker's counters start again from 0: a new process counts as progress
        only once it has done something.
        """
        moved = False
        for name, counter in self.counters.items():
            status = latest.get(name)
            if status is None:
                continue
            value = float(status.counters.get(counter, 0))
            pid, previous = self._seen.get(name, (status.pid, 0.0))
            if value > (previous if pid == status.pid else 0.0):
                moved = True
            self._seen[name] = (status.pid, value)
        if moved:
            self.last_progress_s = now_s
        return moved

    def quiet_s(self, now_s: float) -> float:
        """Seconds since the last progress (or since the drain began)."""
        return now_s - self.last_progress_s


def run_completed(workers: Iterable, latest: Mapping[str, wire.Status]) -> bool:
    """True when this host runs the sink and its last heartbeat says every stream was written.

    A signal after that (a finished replay whose web view stays up until Ctrl-C) ends a
    run that is complete: it is not an interruption, and the exit code stays 0.
    """
    sinks = [worker.name for worker in workers if worker.role == SINK]
    return bool(sinks) and all(name in latest and latest[name].counters.get(COMPLETE, 0) >= 1 for name in sinks)


def interrupted_line(workers: Iterable, latest: Mapping[str, wire.Status]) -> str:
    """``interrupted at frame N of M; K results written``, from the stages' last counters."""
    sent = written = 0
    totals = []
    roles = {worker.name: worker.role for worker in workers}
    for name, status in latest.items():
        if roles.get(name) == SOURCE:
            sent += int(status.counters.get(FRAMES_OUT, 0))
            if FRAMES_TOTAL in status.counters:
                totals.append(int(status.counters[FRAMES_TOTAL]))
        elif roles.get(name) == SINK:
            written += int(status.counters.get(RESULTS_WRITTEN, 0))
    of_total = f" of {sum(totals)}" if totals else ""
    return f"interrupted at frame {sent}{of_total}; {plural(written, 'result')} written"

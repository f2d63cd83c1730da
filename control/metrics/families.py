"""What ``/metrics``, ``/healthz`` and ``/readyz`` say, from a snapshot the supervisor's loop publishes.

The supervisor's loop publishes an immutable :class:`Snapshot` (its status report, when it
was made and the exit code so far); the HTTP thread reads only that, never the
supervisor's own state.  :class:`SnapshotCollector` turns it into Prometheus families:
one table maps heartbeat counters (:mod:`fakeblock.common.counters`) to metric names, and
a worker gets a sample only for the counters it reports (``fakeblock_batch_size`` only
for classify, the latency histogram only for the display).  Every sample is labelled
with ``host``, ``stage`` and ``worker``; the supervisor's own with ``host``.  A stage's
counters start again from 0 when it is restarted: Prometheus's ``rate()`` handles that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from fakeblock.common import counters, wire
from fakeblock.common.wire import SUPERVISOR_PHASES, WORKER_STATES
from fakeblock.control.status.table import queue_depth

# A worker alive and heartbeating; starting, silent, restarting, done and stopped are not ready.
READY_STATES = ("running", "idle")
LOOP_SILENT_AFTER_S = 5.0  # /healthz fails when the supervisor's loop has published nothing for this long
WORKER_LABELS = ("host", "stage", "worker")
# Name -> its Counter/Gauge/HistogramMetricFamily; each has an add_metric of its own signature.
Families = dict[str, Any]
# Heartbeat counter -> (family, help): the one table of metric names.  Counters end in _total.
COUNTER_FAMILIES = {
    counters.FRAMES_IN: ("fakeblock_frames_in_total", "Messages taken in for work (a source: frames read)."),
    counters.FRAMES_OUT: ("fakeblock_frames_out_total", "Messages sent on downstream (display: frames drawn)."),
    counters.MALFORMED: ("fakeblock_malformed_messages_total", "Messages that failed to decode, dropped."),
    counters.UNEXPECTED: ("fakeblock_unexpected_messages_total", "Well-formed messages of a kind the link never "
                          "carries, dropped."),
    counters.DROPPED: ("fakeblock_frames_dropped_total", "Frames given up: no room downstream (capture, queue), "
                       "unmatched or discarded (display)."),
    counters.DISPLAY_DROPPED: ("fakeblock_display_frames_dropped_total", "Frames the display link had no room "
                               "for, live (capture)."),
    counters.REFUSED: ("fakeblock_refused_messages_total", "Messages no honest peer sends (display)."),
    counters.STALE: ("fakeblock_stale_frames_total", "Lossless frames detect could not track exactly, sent again."),
    counters.HURRIED: ("fakeblock_hurried_frames_total", "Live frames searched only near known tracks (detect)."),
    counters.FACES: ("fakeblock_faces_total", "Faces found (detect) or scored (classify)."),
    counters.BATCHES: ("fakeblock_batches_total", "Model calls (classify)."),
    counters.RESULTS_IN: ("fakeblock_results_in_total", "Results received from classify (display)."),
    counters.RESULTS_WRITTEN: ("fakeblock_results_written_total", "Results handed to the outputs in frame "
                               "order (display)."),
    counters.FRAMES_IGNORED: ("fakeblock_frames_ignored_total", "Frames received while no output draws (display)."),
    counters.SKIPPED: ("fakeblock_frames_skipped_total", "Frame numbers that got no result line, live (display)."),
    counters.UNMATCHED: ("fakeblock_frames_unmatched_total", "Frames dropped since their result never came, "
                         "live (display)."),
    counters.LEASES: ("fakeblock_stream_leases_total", "Times the stream was leased to a detect worker: 1, plus "
                      "one per move (capture)."),
    counters.PEERS_REFUSED: ("fakeblock_lease_peers_refused_total", "Ready messages of new detect workers "
                             "refused: the peer table was full (capture)."),
    counters.MISSING_PIXELS: ("fakeblock_results_missing_pixels_total", "Results released without their frame "
                              "(display)."),
}
GAUGE_FAMILIES = {
    counters.BATCH_SIZE: ("fakeblock_batch_size", "Faces in the latest model call (classify)."),
    counters.FRAMES_TOTAL: ("fakeblock_source_frames", "Frames the source holds, when it knows (capture)."),
    counters.FPS: ("fakeblock_source_frames_per_second", "Frames sent per second, recently (capture)."),
    counters.PEERS: ("fakeblock_lease_peers", "Detect workers that said they are ready within the lease "
                     "timeout (capture)."),
    counters.COMPLETE: ("fakeblock_complete", "1 once every stream has ended and been written (display)."),
    counters.UPTIME_S: ("fakeblock_worker_uptime_seconds", "Seconds since the worker's runtime started."),
    counters.IDLE_S: ("fakeblock_worker_idle_seconds", "Seconds since input last arrived."),
}
SUPERVISOR_COUNTER_FAMILIES = {
    counters.MALFORMED_HEARTBEATS: ("fakeblock_malformed_heartbeats_total", "Messages on the supervisor's status "
                                    "link that failed to decode or came from no worker of it, dropped."),
    counters.MALFORMED_REQUESTS: ("fakeblock_malformed_status_requests_total", "Requests to the supervisor's "
                                  "status service that were not a status request, dropped."),
}
# Families built from the report itself rather than from a counter: name -> (type, labels, help).
REPORT_FAMILIES = {
    "fakeblock_worker_alive": ("gauge", WORKER_LABELS, "1 while the worker's process runs."),
    "fakeblock_worker_ready": ("gauge", WORKER_LABELS, "1 while the worker runs and heartbeats (running or idle)."),
    "fakeblock_worker_state": ("gauge", (*WORKER_LABELS, "state"), "1 for the worker's state, 0 for the others."),
    "fakeblock_restarts_total": ("counter", WORKER_LABELS, "Restarts of the worker after a crash."),
    "fakeblock_queue_depth": ("gauge", WORKER_LABELS, "Messages held inside the worker: the display's reorder "
                              "buffer, classify's frames waiting for a batch, else taken in and neither sent, "
                              "dropped nor sent again (ZeroMQ's own buffers are not visible)."),
    "fakeblock_result_latency_seconds": ("histogram", WORKER_LABELS, "Capture-to-display time of every result "
                                         "since the display started (display)."),
    "fakeblock_supervisor_ready": ("gauge", ("host",), "1 when /readyz answers 200."),
    "fakeblock_supervisor_phase": ("gauge", ("host", "phase"), "1 for the supervisor's phase, 0 for the others."),
    "fakeblock_supervisor_uptime_seconds": ("gauge", ("host",), "Seconds since the supervisor started."),
    "fakeblock_metrics_unauthorized_requests_total": ("counter", ("host",), "Requests for /metrics refused for a "
                                                      "missing or wrong token."),
}


@dataclass(frozen=True)
class Snapshot:
    """What the supervisor's loop last published: its report, when (monotonic seconds), its exit code so far."""

    report: wire.StatusReport
    published_s: float
    exit_code: int = 0


def health_problem(snapshot: Snapshot | None, now_s: float) -> str | None:
    """Why ``/healthz`` fails (the loop stalled, or the supervisor gave up), or None when healthy."""
    if snapshot is None:
        return "supervisor starting"
    silent_s = now_s - snapshot.published_s
    if silent_s > LOOP_SILENT_AFTER_S:
        return f"supervisor loop silent for {silent_s:.0f} s"
    if snapshot.exit_code != 0:
        return f"supervisor stopping after a failure (exit code {snapshot.exit_code})"
    return None


def readiness_problem(snapshot: Snapshot | None, now_s: float) -> str | None:
    """Why ``/readyz`` fails (unhealthy, not running, or the first worker not running or idle), or None."""
    problem = health_problem(snapshot, now_s)
    if problem is not None or snapshot is None:
        return problem
    if snapshot.report.phase != "running":
        return f"supervisor {snapshot.report.phase}"
    for worker in snapshot.report.workers:
        if not worker.alive or worker.state not in READY_STATES:
            return f"{worker.name} {worker.state}"
    return None


def family_names() -> list[str]:
    """Every family ``/metrics`` may serve, as the exposition names them."""
    return [name for table in (COUNTER_FAMILIES, GAUGE_FAMILIES, SUPERVISOR_COUNTER_FAMILIES)
            for name, _help in table.values()] + list(REPORT_FAMILIES)


class SnapshotCollector(Collector):
    """Prometheus families from the latest snapshot (nothing before the first one)."""

    def __init__(self, snapshot: Callable[[], Snapshot | None], clock: Callable[[], float],
                 unauthorized: Callable[[], int]):
        self._snapshot, self._clock, self._unauthorized = snapshot, clock, unauthorized

    def collect(self) -> Iterator[Metric]:
        """Every family with at least one sample."""
        snapshot = self._snapshot()
        if snapshot is None:
            return
        families = _new_families()
        report = snapshot.report
        for worker in report.workers:
            _add_worker(families, report.host, worker)
        host = (report.host,)
        ready = readiness_problem(snapshot, self._clock()) is None
        families["fakeblock_supervisor_ready"].add_metric(host, float(ready))
        for phase in SUPERVISOR_PHASES:
            families["fakeblock_supervisor_phase"].add_metric((*host, phase), float(report.phase == phase))
        families["fakeblock_supervisor_uptime_seconds"].add_metric(host, report.uptime_s)
        families["fakeblock_metrics_unauthorized_requests_total"].add_metric(host, self._unauthorized())
        for counter, (name, _help) in SUPERVISOR_COUNTER_FAMILIES.items():
            if counter in report.counters:
                families[name].add_metric(host, report.counters[counter])
        yield from (family for family in families.values() if family.samples)


def _new_families() -> Families:
    """An empty family per name, each with its labels."""
    made: Families = {}
    for table, kind, labels in ((COUNTER_FAMILIES, CounterMetricFamily, WORKER_LABELS),
                                (GAUGE_FAMILIES, GaugeMetricFamily, WORKER_LABELS),
                                (SUPERVISOR_COUNTER_FAMILIES, CounterMetricFamily, ("host",))):
        made.update({name: kind(name, help_text, labels=labels) for name, help_text in table.values()})
    kinds = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily, "histogram": HistogramMetricFamily}
    made.update({name: kinds[kind](name, help_text, labels=labels)
                 for name, (kind, labels, help_text) in REPORT_FAMILIES.items()})
    return made


def _add_worker(families: Families, host: str, worker: wire.WorkerReport) -> None:
    """One worker's samples: its liveness from the report, the counters its last heartbeat carried."""
    labels = (host, worker.stage, str(worker.worker))
    families["fakeblock_worker_alive"].add_metric(labels, float(worker.alive))
    families["fakeblock_worker_ready"].add_metric(labels, float(worker.alive and worker.state in READY_STATES))
    for state in WORKER_STATES:
        families["fakeblock_worker_state"].add_metric((*labels, state), float(worker.state == state))
    families["fakeblock_restarts_total"].add_metric(labels, worker.restarts)
    values = worker.counters
    for table in (COUNTER_FAMILIES, GAUGE_FAMILIES):
        for counter, (name, _help) in table.items():
            if counter in values:
                families[name].add_metric(labels, values[counter])
    if values:  # after its first heartbeat
        families["fakeblock_queue_depth"].add_metric(labels, queue_depth(values))
    if counters.LATENCY_COUNT in values:
        buckets = [(_bound_text(bound_s), values.get(name, 0)) for bound_s, name in
                   counters.LATENCY_BUCKET_COUNTERS.items()]
        families["fakeblock_result_latency_seconds"].add_metric(
            labels, [*buckets, ("+Inf", values[counters.LATENCY_COUNT])], values.get(counters.LATENCY_SUM_S, 0.0))


def _bound_text(bound_s: float) -> str:
    """A bucket's ``le`` label as Prometheus's own client writes it (``0.01``, ``1.0``, ``10.0``)."""
    return repr(float(bound_s))

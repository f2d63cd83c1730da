"""The status messages: stage heartbeats and a supervisor's answer to ``fakeblock status``.

Their headers are built and checked here; framing, the schema version and the one
``encode``/``decode`` pair stay in :mod:`fakeblock.common.wire`, which re-exports every
name below, so stages and the control plane import the wire alone.  A heartbeat and a
reported worker name the worker the same way (:class:`StageWorker`), with the same checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fakeblock.common import wire_fields as fields
from fakeblock.common.wire_fields import MAX_PID, MAX_RESTARTS, MAX_WORKER_NUMBER

# A status report lists every worker of one host; 64 is four times the most a host may run.
MAX_REPORTED_WORKERS = 64
WORKER_STATES = ("starting", "running", "idle", "silent", "restarting", "done")
SUPERVISOR_PHASES = ("running", "draining", "stopping")


def worker_name(stage: str, worker: int) -> str:
    """``stage/worker``: how logs, the status board and ``fakeblock status`` name one worker."""
    return f"{stage}/{worker}"


@dataclass(frozen=True)
class StageWorker:
    """Which worker a status message is about: its stage, its number there and its process."""

    stage: str
    worker: int
    pid: int

    @property
    def name(self) -> str:
        """The worker's ``stage/worker`` name."""
        return worker_name(self.stage, self.worker)


@dataclass(frozen=True)
class Status(StageWorker):
    """A stage's heartbeat: who it is, and its counters (numbers only)."""

    counters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusRequest:
    """``fakeblock status`` asking a supervisor's status service for a :class:`StatusReport`."""


@dataclass(frozen=True)
class WorkerReport(StageWorker):
    """One stage worker as its supervisor sees it: liveness, rates and latest counters."""

    alive: bool
    state: str
    restarts: int
    rate_in_fps: float
    rate_out_fps: float
    counters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusReport:
    """A supervisor's answer: its host name, phase, uptime, every worker it runs and its own counters."""

    host: str
    supervisor_pid: int
    phase: str
    uptime_s: float
    workers: tuple[WorkerReport, ...] = ()
    counters: dict[str, float] = field(default_factory=dict)


StatusMessage = Status | StatusRequest | StatusReport


def status_header(message) -> dict | None:
    """The header (without schema version) of a status message; None for any other message."""
    if isinstance(message, Status):
        return {"kind": "status", **_worker_header(message), "counters": dict(message.counters)}
    if isinstance(message, StatusRequest):
        return {"kind": "status_request"}
    if isinstance(message, StatusReport):
        return {"kind": "status_report", "host": message.host, "pid": message.supervisor_pid,
                "phase": message.phase, "uptime_s": float(message.uptime_s),
                "workers": [_report_header(report) for report in message.workers],
                "counters": dict(message.counters)}
    return None


def _worker_header(worker: StageWorker) -> dict:
    return {"stage": worker.stage, "worker": worker.worker, "pid": worker.pid}


def _report_header(report: WorkerReport) -> dict:
    return {**_worker_header(report), "alive": report.alive, "state": report.state, "restarts": report.restarts,
            "rate_in_fps": float(report.rate_in_fps), "rate_out_fps": float(report.rate_out_fps),
            "counters": dict(report.counters)}


def _stage_worker(header: dict) -> tuple[str, int, int]:
    """The checked stage, worker number and pid of a heartbeat or a reported worker."""
    return (fields.name(header, "stage"), fields.integer(header, "worker", 0, MAX_WORKER_NUMBER),
            fields.integer(header, "pid", 0, MAX_PID))


def _status(header: dict) -> Status:
    return Status(*_stage_worker(header), fields.counters(header))


def _status_request(header: dict) -> StatusRequest:
    if set(header) != {"v", "kind"}:
        raise ValueError("a status request carries no fields")
    return StatusRequest()


def _worker_report(entry) -> WorkerReport:
    if not isinstance(entry, dict):
        raise ValueError("each reported worker must be a map")
    rates = [fields.number(entry, key) for key in ("rate_in_fps", "rate_out_fps")]
    if min(rates) < 0:
        raise ValueError("rates cannot be negative")
    return WorkerReport(*_stage_worker(entry), fields.boolean(entry, "alive"),
                        fields.name(entry, "state", WORKER_STATES), fields.integer(entry, "restarts", 0, MAX_RESTARTS),
                        rates[0], rates[1], fields.counters(entry))


def _status_report(header: dict) -> StatusReport:
    workers = header.get("workers")
    if not isinstance(workers, list) or len(workers) > MAX_REPORTED_WORKERS:
        raise ValueError(f"workers must be a list of at most {MAX_REPORTED_WORKERS}")
    uptime_s = fields.number(header, "uptime_s")
    if uptime_s < 0:
        raise ValueError("uptime cannot be negative")
    # A supervisor from before its counters were reported sends none: that is no counters, not an error.
    counters = fields.counters(header) if "counters" in header else {}
    return StatusReport(fields.name(header, "host"), fields.integer(header, "pid", 0, MAX_PID),
                        fields.name(header, "phase", SUPERVISOR_PHASES), uptime_s,
                        tuple(_worker_report(entry) for entry in workers), counters)


# The status messages' decoders by kind; the wire's decoder looks every kind up here too.
STATUS_DECODERS: dict[str, Callable[[dict], StatusMessage]] = {
    "status": _status, "status_request": _status_request, "status_report": _status_report}

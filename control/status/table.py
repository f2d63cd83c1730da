"""The site-wide status table and its ``--json`` form, from the supervisors' answers.

One row per host and stage: how many of its workers are alive, frames/s in and out (summed
over workers), queue depth (messages held inside the stage), drops, the latest batch size,
latency p95 (measured at the display) and uptime.  Each host is a row above its stages,
its supervisor's: its phase when not running, the messages it dropped as malformed
(heartbeats and status requests) and its uptime.  A host that did not answer is one row
saying so.  The table fits 80 columns.
"""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

from fakeblock.common import wire
from fakeblock.common.counters import (
    BATCH_SIZE,
    DISPLAY_DROPPED,
    DROPPED,
    FRAMES_IN,
    FRAMES_OUT,
    LATENCY_P95_MS,
    MALFORMED,
    MALFORMED_HEARTBEATS,
    MALFORMED_REQUESTS,
    PENDING,
    STALE,
    UPTIME_S,
)
from fakeblock.common.stages import STAGE_NAMES
from fakeblock.common.wording import IN_PER_S, OUT_PER_S
from fakeblock.control.status.client import Answer
from fakeblock.control.status.replay_progress import clock

# "alive" is alive/workers; each host is a row above its stages (see status_table).
COLUMNS = ("stage", "alive", IN_PER_S, OUT_PER_S, "queue", "drops", "batch", "p95 ms", "uptime")
STAGE_INDENT = "  "
DROP_COUNTERS = (DROPPED, DISPLAY_DROPPED, MALFORMED)
SUPERVISOR_DROP_COUNTERS = (MALFORMED_HEARTBEATS, MALFORMED_REQUESTS)


def queue_depth(counters: dict) -> float:
    """Messages a worker holds: what it says it holds (the display's reorder buffer, classify's frames
    waiting for a batch), else what came in and neither went out, was dropped nor will be sent again.

    A live capture drops a frame it has no room for: that frame came in and is gone, so it
    is not held (counted as in, never out, it would make the queue grow with the drops);
    so is a frame detect refuses as stale (the rewound source sends it again).
    """
    if PENDING in counters:
        return counters[PENDING]
    gone = counters.get(FRAMES_OUT, 0) + counters.get(DROPPED, 0) + counters.get(STALE, 0)
    return max(0.0, counters.get(FRAMES_IN, 0) - gone)


def stage_summary(stage: str, workers: list[wire.WorkerReport]) -> dict:
    """One stage's workers on one host, added up."""
    alive = [worker for worker in workers if worker.alive]
    batches = [worker.counters[BATCH_SIZE] for worker in alive if BATCH_SIZE in worker.counters]
    latencies = [worker.counters[LATENCY_P95_MS] for worker in workers if LATENCY_P95_MS in worker.counters]
    uptimes = [worker.counters[UPTIME_S] for worker in alive if UPTIME_S in worker.counters]
    return {
        "stage": stage, "workers": len(workers), "alive": len(alive),
        "states": sorted({worker.state for worker in workers}),
        "frames_in_per_s": round(sum(worker.rate_in_fps for worker in alive), 2),
        "frames_out_per_s": round(sum(worker.rate_out_fps for worker in alive), 2),
        "queue_depth": sum(queue_depth(worker.counters) for worker in alive),
        "drops": sum(worker.counters.get(name, 0) for worker in workers for name in DROP_COUNTERS),
        "batch_size": max(batches) if batches else None,
        "latency_p95_ms": max(latencies) if latencies else None,
        "uptime_s": round(max(uptimes), 1) if uptimes else None,
        "restarts": sum(worker.restarts for worker in workers),
    }


def host_summary(answer: Answer) -> dict:
    """One host: its answer (or error) and its stages in pipeline order."""
    summary = {"host": answer.target.label, "endpoint": answer.target.endpoint, "answered": answer.report is not None}
    if answer.report is None:
        return {**summary, "error": answer.error}
    report = answer.report
    by_stage: dict[str, list[wire.WorkerReport]] = {}
    for worker in report.workers:
        by_stage.setdefault(worker.stage, []).append(worker)
    order = [stage for stage in STAGE_NAMES if stage in by_stage] + sorted(set(by_stage) - set(STAGE_NAMES))
    return {**summary, "reported_host": report.host, "supervisor_pid": report.supervisor_pid, "phase": report.phase,
            "uptime_s": round(report.uptime_s, 1), "supervisor_counters": dict(report.counters),
            "stages": [stage_summary(stage, by_stage[stage]) for stage in order],
            "workers": [_worker_json(worker) for worker in report.workers]}


def _worker_json(worker: wire.WorkerReport) -> dict:
    return {"stage": worker.stage, "worker": worker.worker, "pid": worker.pid, "alive": worker.alive,
            "state": worker.state, "restarts": worker.restarts, "frames_in_per_s": round(worker.rate_in_fps, 2),
            "frames_out_per_s": round(worker.rate_out_fps, 2), "counters": worker.counters}


def status_document(answers: list[Answer]) -> dict:
    """The ``--json`` output: every host with its stages and workers."""
    return {"hosts": [host_summary(answer) for answer in answers]}


def _number(value, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _uptime(seconds: float | None) -> str:
    # Whole seconds elapsed: an uptime is not rounded up.
    return "" if seconds is None else clock(int(seconds))


def status_table(document: dict) -> Table:
    """The rich table of :func:`status_document`'s hosts, whole at 80 columns.

    Each host is a row of its own (its supervisor's drops and uptime, its phase or its
    error on a second line), its stages indented below; a stage that is not simply
    running says how on a second line.  Short headers and no column borders keep every
    name whole.
    """
    table = Table(title="fakeblock status", box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "stage" else "right", overflow="fold")
    for host in document["hosts"]:
        if not host["answered"]:
            table.add_row(f"[bold]{escape(host['host'])}[/bold]\n[red]{escape(host['error'])}[/red]",
                          *[""] * (len(COLUMNS) - 1), end_section=True)
            continue
        table.add_row(*_supervisor_row(host))
        for stage in host["stages"]:
            table.add_row(*_stage_row(stage))
        table.add_section()
    return table


def _stage_row(stage: dict) -> tuple[str, ...]:
    """A stage's row: its name (and any state but running below it), alive of workers, rates, queue and the rest."""
    alive_style = "green" if stage["alive"] == stage["workers"] else "red"
    # "idle" means its upstream is silent; "silent" that the stage itself stopped reporting.
    unusual = [state for state in stage["states"] if state != "running"]
    name = STAGE_INDENT + stage["stage"] + (f"\n{STAGE_INDENT}[yellow]({', '.join(unusual)})[/yellow]"
                                            if unusual else "")
    return (name, f"[{alive_style}]{stage['alive']}/{stage['workers']}[/{alive_style}]",
            _number(stage["frames_in_per_s"]), _number(stage["frames_out_per_s"]),
            _number(stage["queue_depth"], 0), _number(stage["drops"], 0), _number(stage["batch_size"], 0),
            _number(stage["latency_p95_ms"], 0), _uptime(stage["uptime_s"]))


def _supervisor_row(host: dict) -> tuple[str, ...]:
    """The host's row, its supervisor's own: its phase when not running, its malformed messages as drops, its uptime."""
    phase = "" if host["phase"] == "running" else f"\n[yellow]({host['phase']})[/yellow]"
    drops = sum(host["supervisor_counters"].get(name, 0) for name in SUPERVISOR_DROP_COUNTERS)
    cells = {"stage": f"[bold]{escape(host['host'])}[/bold]{phase}", "drops": _number(drops, 0),
             "uptime": _uptime(host["uptime_s"])}
    return tuple(cells.get(column, "") for column in COLUMNS)

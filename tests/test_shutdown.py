"""The supervisor's way out without processes: what counts as a drain's progress, and the phases
signals and quiet time move it through (control/supervisor/drain.py, control/supervisor/shutdown.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fakeblock.common import wire
from fakeblock.common.counters import COMPLETE, FRAMES_OUT, RESULTS_WRITTEN
from fakeblock.common.stages import SINK, SOURCE
from fakeblock.control.supervisor.drain import (
    DRAIN_QUIET_S,
    DRAIN_TIMEOUT_S,
    ProgressWatch,
    progress_counters,
    run_completed,
)
from fakeblock.control.supervisor.shutdown import DRAINING, JOIN_TIMEOUT_S, STOPPING, Shutdown


@dataclass
class FakeProcess:
    terminated: bool = False

    def terminate(self) -> None:
        self.terminated = True


@dataclass
class FakeWorker:
    """What the shutdown reads of a worker: its name, drain role, liveness and process."""

    name: str
    role: str | None = None
    pid: int = 100
    running: bool = True
    process: FakeProcess = field(default_factory=FakeProcess)
    finished: bool = False

    @property
    def label(self) -> str:
        return self.name

    def alive(self) -> bool:
        return self.running


@dataclass
class FakeBoard:
    """What the shutdown reads of the status board (the latest heartbeats) and tells it (an interruption)."""

    latest: dict
    ended_before_interruption: frozenset | None = None  # None until a signal interrupts the run

    def note_interruption(self, ended) -> None:
        self.ended_before_interruption = frozenset(ended)


def heartbeat(name: str, pid: int = 100, **counters: float) -> wire.Status:
    stage, worker = name.split("/")
    return wire.Status(stage, int(worker), pid, counters)


FULL_HOST = [FakeWorker("display/0", SINK), FakeWorker("queue/0"), FakeWorker("classify/0"), FakeWorker("detect/0"),
             FakeWorker("capture/0", SOURCE)]


def test_progress_is_the_ends_of_the_drain_or_on_a_worker_host_what_its_workers_pass_on():
    assert progress_counters(FULL_HOST) == {"display/0": RESULTS_WRITTEN, "capture/0": FRAMES_OUT}
    assert progress_counters([FakeWorker("capture/0", SOURCE)]) == {"capture/0": FRAMES_OUT}
    workers = [FakeWorker("detect/0"), FakeWorker("detect/1"), FakeWorker("classify/0")]
    assert progress_counters(workers) == {"detect/0": FRAMES_OUT, "detect/1": FRAMES_OUT, "classify/0": FRAMES_OUT}


def test_only_growth_since_the_drain_began_is_progress():
    latest = {"display/0": heartbeat("display/0", results_written=40), "capture/0": heartbeat("capture/0")}
    watch = ProgressWatch({"display/0": RESULTS_WRITTEN, "capture/0": FRAMES_OUT}, latest, now_s=10.0)
    assert not watch.note(latest, 10.5) and watch.quiet_s(11.0) == 1.0  # what was written before is not progress
    latest["display/0"] = heartbeat("display/0", results_written=41)
    assert watch.note(latest, 11.5) and watch.quiet_s(12.0) == 0.5
    latest["capture/0"] = heartbeat("capture/0", frames_out=3)
    assert watch.note(latest, 12.0)


def test_a_restarted_worker_counts_as_progress_only_once_it_does_something():
    latest = {"display/0": heartbeat("display/0", pid=100, results_written=40)}
    watch = ProgressWatch({"display/0": RESULTS_WRITTEN}, latest, now_s=0.0)
    latest["display/0"] = heartbeat("display/0", pid=200, results_written=0)  # its counters start again
    assert not watch.note(latest, 1.0)
    latest["display/0"] = heartbeat("display/0", pid=200, results_written=1)
    assert watch.note(latest, 2.0)


def test_a_drain_without_progress_ends_after_the_quiet_time_and_the_stop_at_its_deadline():
    board = FakeBoard(latest={worker.name: heartbeat(worker.name) for worker in FULL_HOST})
    shutdown = Shutdown(FULL_HOST, board)
    assert shutdown.order_due(0.0) is None and not shutdown.finished(0.0)
    shutdown.on_signal(2, None)
    assert board.ended_before_interruption == frozenset(), "the board was told: its rows now end as stopped"
    shutdown.handle_signals(1.0)
    assert shutdown.phase == DRAINING and shutdown.order_due(1.0) == wire.FINISH
    shutdown.check_drain(1.0 + DRAIN_QUIET_S - 0.1)
    assert shutdown.phase == DRAINING
    shutdown.check_drain(1.0 + DRAIN_QUIET_S)
    assert shutdown.phase == STOPPING and shutdown.order_due(1.0 + DRAIN_QUIET_S) == wire.STOP
    assert not shutdown.finished(1.0 + DRAIN_QUIET_S + JOIN_TIMEOUT_S - 0.1)
    assert shutdown.finished(1.0 + DRAIN_QUIET_S + JOIN_TIMEOUT_S)  # then leftovers are terminated
    assert not any(worker.process.terminated for worker in FULL_HOST), "every stage had reported"


def test_a_drain_that_keeps_moving_still_ends_at_the_timeout():
    display = FakeWorker("display/0", SINK)
    board = FakeBoard(latest={"display/0": heartbeat("display/0", results_written=0)})
    shutdown = Shutdown([display], board)
    shutdown.on_signal(15, None)
    shutdown.handle_signals(0.0)
    now_s = 0.0
    while shutdown.phase == DRAINING and now_s < 2 * DRAIN_TIMEOUT_S:
        now_s += 0.5
        board.latest["display/0"] = heartbeat("display/0", results_written=now_s * 10)
        shutdown.check_drain(now_s)
    assert shutdown.phase == STOPPING and DRAIN_TIMEOUT_S < now_s <= DRAIN_TIMEOUT_S + 0.5


def test_a_second_signal_skips_the_drain_and_a_third_ends_the_wait():
    starting = FakeWorker("classify/0", pid=300)  # no heartbeat from this process yet: it holds no work
    workers = [FakeWorker("display/0", SINK), starting]
    shutdown = Shutdown(workers, FakeBoard(latest={"display/0": heartbeat("display/0")}))
    shutdown.on_signal(2, None)
    shutdown.handle_signals(0.0)
    shutdown.on_signal(2, None)
    shutdown.handle_signals(0.1)
    assert shutdown.phase == STOPPING and not shutdown.finished(0.2)
    assert starting.process.terminated and not workers[0].process.terminated
    shutdown.on_signal(2, None)
    shutdown.handle_signals(0.3)
    assert shutdown.finished(0.3) and shutdown.leftovers_deadline_s(0.3) == 0.3
    assert shutdown.signal_number == 2


def test_nothing_is_left_to_drain_once_the_ends_have_exited():
    display, capture = FakeWorker("display/0", SINK), FakeWorker("capture/0", SOURCE)
    shutdown = Shutdown([display, capture, FakeWorker("detect/0")], FakeBoard(latest={}))
    shutdown.on_signal(15, None)
    shutdown.handle_signals(0.0)
    display.running = capture.running = False
    shutdown.check_drain(0.1)
    assert shutdown.phase == STOPPING


def test_a_run_is_complete_only_once_every_sink_has_said_so():
    workers = [FakeWorker("capture/0", SOURCE), FakeWorker("display/0", SINK)]
    assert not run_completed(workers, {})
    assert not run_completed(workers, {"display/0": heartbeat("display/0", **{RESULTS_WRITTEN: 20})})
    assert run_completed(workers, {"display/0": heartbeat("display/0", **{RESULTS_WRITTEN: 20, COMPLETE: 1})})
    # A host without the sink (a worker host) never knows the run is complete.
    assert not run_completed([FakeWorker("detect/0")], {"detect/0": heartbeat("detect/0", **{COMPLETE: 1})})

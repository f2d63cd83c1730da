"""The supervisor's way out: signals, its phases and their deadlines.

``running`` -> ``draining`` -> ``stopping``.  The first SIGINT/SIGTERM starts the drain
(the control link carries "finish": sources end their streams, what is in flight is
written); it ends when what it waits for has exited, when nothing has moved for
:data:`~fakeblock.control.supervisor.drain.DRAIN_QUIET_S`, or at
:data:`~fakeblock.control.supervisor.drain.DRAIN_TIMEOUT_S`.  Stopping carries "stop": every
stage exits within ``JOIN_TIMEOUT_S`` or is terminated; a stage that has not reported
since it started holds no work and is terminated at once rather than waited for while it
loads.  A second signal skips the drain, a third terminates every stage at once.

The supervisor asks :meth:`Shutdown.order_due` which order to (re)send on the control link
and :meth:`Shutdown.finished` whether to leave its loop; it enters ``stopping`` itself
when the pipeline is done or has failed.
"""

from __future__ import annotations

import logging
import signal

from fakeblock.common import wire
from fakeblock.common.runtime import STOP_GRACE_S
from fakeblock.control.status.view import StatusBoard
from fakeblock.control.supervisor.drain import (
    DRAIN_QUIET_S,
    DRAIN_TIMEOUT_S,
    ProgressWatch,
    progress_counters,
    run_completed,
)
from fakeblock.control.supervisor.workers import Worker

LOGGER = logging.getLogger(__name__)
RUNNING, DRAINING, STOPPING = "running", "draining", "stopping"
JOIN_TIMEOUT_S = STOP_GRACE_S + 3.0  # a stage's own drain after a stop, and its exit
STOP_REPEAT_S = 0.5  # PUB drops messages to late subscribers, so orders are repeated
TERMINATE_SIGNALS = 3  # the third Ctrl-C or SIGTERM terminates every stage at once


def signal_words(signal_number: int) -> tuple[str, str]:
    """How a person names the signal, and what sending it again is: ``("Ctrl-C", "Ctrl-C again")``."""
    if signal_number == signal.SIGINT:
        return "Ctrl-C", "Ctrl-C again"
    name = signal.Signals(signal_number).name
    return f"{name} (a stop request)", f"another {name}"


class Shutdown:
    """Signals received, the current phase, and when each phase is over."""

    def __init__(self, workers: list[Worker], board: StatusBoard):
        self.workers, self.board = workers, board
        self.signals_received = 0
        self.signal_number: int | None = None
        # Whether the sink had written every stream when the first signal came: then the
        # signal ends a completed run, not an interrupted one.
        self.completed_before_signal = False
        self.phase = RUNNING
        self.phase_started_s = 0.0
        self.progress: ProgressWatch | None = None  # while draining
        self.stop_deadline_s: float | None = None  # once stopping: when leftovers are terminated
        self._last_order_s = 0.0

    def on_signal(self, signal_number, _frame) -> None:
        """The SIGINT/SIGTERM handler: count it and say what happens now."""
        self.signals_received += 1
        if self.signal_number is None:
            self.signal_number = int(signal_number)
            self.completed_before_signal = run_completed(self.workers, self.board.latest)
            if not self.completed_before_signal:  # the table then says "stopped", as the last lines do
                self.board.note_interruption(worker.name for worker in self.workers if worker.finished)
        name, again = signal_words(signal_number)
        if self.signals_received == 1:
            LOGGER.info("%s: finishing the frames under way, then stopping (%s to stop at once)", name, again)
        elif self.signals_received < TERMINATE_SIGNALS:
            LOGGER.info("%s: stopping at once (%s to end every stage by force)", name, again)
        else:
            LOGGER.warning("%s: ending every stage by force", name)

    def handle_signals(self, now_s: float) -> None:
        """Move on a phase for the signals received since the last call."""
        if self.signals_received >= TERMINATE_SIGNALS:
            self.enter(STOPPING, now_s)
            self.stop_deadline_s = now_s
        elif self.signals_received >= 2:
            self.enter(STOPPING, now_s)
        elif self.signals_received == 1 and self.phase == RUNNING:
            self.enter(DRAINING, now_s)

    def enter(self, phase: str, now_s: float) -> None:
        """Begin ``phase`` (a phase is entered once; stopping never goes back)."""
        if phase == self.phase or self.phase == STOPPING:
            return
        LOGGER.debug("phase %s -> %s", self.phase, phase)
        self.phase, self.phase_started_s, self._last_order_s = phase, now_s, 0.0
        if phase == DRAINING:
            self.progress = ProgressWatch(progress_counters(self.workers), self.board.latest, now_s)
        elif phase == STOPPING:
            self.stop_deadline_s = now_s + JOIN_TIMEOUT_S
            self._terminate_starting()

    def check_drain(self, now_s: float) -> None:
        """End the drain when what it waits for has exited, has not moved for a quiet time, or at the timeout."""
        if self.phase != DRAINING or self.progress is None:
            return
        self.progress.note(self.board.latest, now_s)
        if not any(worker.alive() for worker in self.workers if worker.name in self.progress.counters):
            self.enter(STOPPING, now_s)
        elif self.progress.quiet_s(now_s) >= DRAIN_QUIET_S:
            LOGGER.info("drain: no progress for %.1f s; stopping", DRAIN_QUIET_S)
            self.enter(STOPPING, now_s)
        elif now_s - self.phase_started_s > DRAIN_TIMEOUT_S:
            LOGGER.warning("drain took over %.0f s; stopping", DRAIN_TIMEOUT_S)
            self.enter(STOPPING, now_s)

    def order_due(self, now_s: float) -> str | None:
        """The order to send on the control link now (finish or stop), None when none is due."""
        if self.phase == RUNNING or now_s - self._last_order_s < STOP_REPEAT_S:
            return None
        self._last_order_s = now_s
        return wire.FINISH if self.phase == DRAINING else wire.STOP

    def finished(self, now_s: float) -> bool:
        """True once stopping and every stage has exited, or its time is up (leftovers get terminated)."""
        if self.phase == RUNNING:
            return False
        if not any(worker.alive() for worker in self.workers):
            return True
        return self.stop_deadline_s is not None and now_s >= self.stop_deadline_s

    def leftovers_deadline_s(self, now_s: float) -> float:
        """When stages still running at the end are terminated: the stop's deadline, else a full join."""
        return self.stop_deadline_s if self.stop_deadline_s is not None else now_s + JOIN_TIMEOUT_S

    def _terminate_starting(self) -> None:
        """A stage that has not reported since it started holds no work: end it now, not once it has loaded."""
        for worker in self.workers:
            status = self.board.latest.get(worker.name)
            if worker.alive() and (status is None or status.pid != worker.pid):
                LOGGER.info("%s is still starting; terminating it", worker.label)
                worker.process.terminate()

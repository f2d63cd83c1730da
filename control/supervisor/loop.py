"""``fakeblock up``: start this host's stages, watch heartbeats, restart crashes, stop cleanly.

It runs the stages ``config.stages`` names (all of them on one host), answers ``fakeblock
status`` (:mod:`~fakeblock.control.status.service`), and exits once every stage it
runs has finished; a host of workers (detect, queue, classify) runs until told to stop.

One shutdown path (:mod:`fakeblock.control.supervisor.shutdown`): SIGINT/SIGTERM (or the end
of a lossless source) becomes orders on the control link.  First "finish": sources end
their streams while every link stays open, so what is in flight drains into the results;
once the display has written everything, or nothing has moved for a quiet time
(:mod:`fakeblock.control.supervisor.drain`), "stop": every stage exits, is joined with a
timeout, and only then is anything terminated.

A signal that comes once the sink has reported every stream written (a finished replay
whose web view stays up until Ctrl-C) ends a completed run: exit 0, not 128 + signal.

A crashed stage is restarted with a back-off, given up on (exit 1) when it crashes too
often (:mod:`~fakeblock.control.supervisor.restarts`), and made up for in a lossless replay
(:mod:`~fakeblock.control.supervisor.rewinds`).  Nothing is restarted once a stop has begun.

With ``--metrics-port`` the loop also publishes its report for the metrics and health
endpoint (:mod:`~fakeblock.control.metrics.http_server`), which runs in a thread of its own.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from multiprocessing import resource_tracker
from socket import gethostname

import zmq

from fakeblock.common import early_signals, wire
from fakeblock.common.config import PipelineConfig
from fakeblock.common.counters import MALFORMED_HEARTBEATS, MALFORMED_REQUESTS
from fakeblock.common.endpoints import local_status_service
from fakeblock.common.errors import (
    CRASH_EXIT_CODE,
    OUTPUT_FAILED_EXIT_CODE,
    SIGNAL_EXIT_BASE,
    USER_ERROR_EXIT_CODE,
    USER_QUIT_EXIT_CODE,
)
from fakeblock.common.security.access import Security
from fakeblock.common.sockets import CONTROL_HWM, STATUS_HWM, bind, make_socket
from fakeblock.common.stages import SINK, SOURCE, STAGES, StageSpec
from fakeblock.control.metrics.http_server import MetricsServer
from fakeblock.control.status import discovery
from fakeblock.control.status.inbox import StatusInbox
from fakeblock.control.status.service import StatusService
from fakeblock.control.status.view import StatusBoard
from fakeblock.control.supervisor.drain import interrupted_line
from fakeblock.control.supervisor.restarts import RestartPolicy
from fakeblock.control.supervisor.rewinds import Rewinds
from fakeblock.control.supervisor.shutdown import DRAINING, RUNNING, STOPPING, Shutdown
from fakeblock.control.supervisor.workers import Worker, plan_workers, stop_leftovers

LOGGER = logging.getLogger(__name__)
SOURCE_START_WAIT_S = 30.0


class Supervisor:
    """Owns the stage processes of one pipeline on this host."""

    def __init__(self, config: PipelineConfig, log_level: int = logging.INFO, stages: tuple[StageSpec, ...] = STAGES,
                 restart_policy: RestartPolicy | None = None):
        self.config, self.log_level = config, log_level
        self.restart_policy = restart_policy or RestartPolicy()
        self.workers = plan_workers(config, stages)
        self.board = StatusBoard(config, [worker.name for worker in self.workers])
        self.security = Security(config.security)
        self.shutdown = Shutdown(self.workers, self.board)
        self.rewinds = Rewinds(config)
        self.rewinds.prepare(self.workers)
        self.service: StatusService | None = None
        self.inbox = StatusInbox(self.board, self.workers)
        self.metrics: MetricsServer | None = None
        self.exit_code = 0

    @property
    def phase(self) -> str:
        """running, draining or stopping."""
        return self.shutdown.phase

    def run(self) -> int:
        """Run until the source is done, a fatal error, or a signal; return the exit code."""
        # The resource tracker is spawned with the first worker; started now, it carries no
        # stage's name in its environment (so `ps e` and orphan checks see only stages).
        resource_tracker.ensure_running()
        # Bound before anything else: a busy metrics port stops the run before any stage starts.
        self.metrics = MetricsServer.start(self.config.supervisor)
        context = zmq.Context()
        sockets: list[zmq.Socket] = []
        note = status = None
        previous = {sig: signal.signal(sig, self.shutdown.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        for early in early_signals.take():  # came during start-up, its exception swallowed: answer it now
            self.shutdown.on_signal(early, None)
        try:
            control, status = self._bind_links(context, sockets)
            self.service = StatusService(context, self.security, local_status_service(self.config.endpoints),
                                         self.config.status_service)
            note = self._register()
            # The live view starts first: the stages then inherit the stderr it shows above itself.
            with self.board.live(self.config.show_status):
                for worker in self.workers:
                    if worker.role != SOURCE:  # sources start once the rest is ready (see _start_sources)
                        worker.start(self.log_level, self.config.security)
                self._loop(control, status, self.service)
        finally:
            # Still under this supervisor's handlers: a signal now cannot cut the cleanup short.
            stop_leftovers(self.workers, self.shutdown.leftovers_deadline_s(time.monotonic()))
            if status is not None:  # the stages' last heartbeats, sent as they closed: the final counts
                self.inbox.read_final(status)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            discovery.unregister(note)
            self._close(context, sockets, self.service)
            if self.metrics is not None:
                self.metrics.close()
        self.board.write_stats(self.config.stats, self.workers, self.counters())
        interrupted = self.shutdown.signal_number is not None and not self.shutdown.completed_before_signal
        summary = self.board.end_summary(stopped=interrupted)
        if summary is not None:
            LOGGER.info("%s", summary)
        if self.shutdown.signal_number is not None and self.exit_code == 0:
            self._note_signal_exit(self.shutdown.signal_number)
        return self.exit_code

    def _note_signal_exit(self, signal_number: int) -> None:
        """A signal ended the run: an interruption (exit 128 + signal), unless the run had completed."""
        if self.shutdown.completed_before_signal:
            LOGGER.info("%s after the run had completed: stopped, exit 0", signal.Signals(signal_number).name)
            return
        self.exit_code = SIGNAL_EXIT_BASE + signal_number
        LOGGER.warning("%s", interrupted_line(self.workers, self.board.latest))

    def counters(self) -> dict[str, float]:
        """The supervisor's own counters: messages it dropped on its status link and its status service."""
        return {MALFORMED_HEARTBEATS: self.board.malformed,
                MALFORMED_REQUESTS: self.service.malformed if self.service is not None else 0}

    def _bind_links(self, context: zmq.Context, sockets: list) -> tuple[zmq.Socket, zmq.Socket]:
        """The control PUB and status PULL every local stage connects to (CURVE servers with keys)."""
        self.security.start(context)
        control = make_socket(context, zmq.PUB, CONTROL_HWM, linger_ms=500)
        sockets.append(control)
        status = make_socket(context, zmq.PULL, STATUS_HWM, linger_ms=0)
        sockets.append(status)
        for link, endpoint in ((control, self.config.endpoints.control), (status, self.config.endpoints.status)):
            self.security.server(link)
            bind(link, endpoint)
        return control, status

    def _register(self):
        """Leave a note so `fakeblock status` on this machine finds this pipeline (and remove the
        notes and sockets of supervisors that died without cleaning up)."""
        address = local_status_service(self.config.endpoints)
        if address is None:
            return None
        discovery.remove_stale_runs()
        sources = tuple(discovery.source_description(slot.config.source, slot.config.stream)
                        for slot in self.config.capture_slots())
        return discovery.register(discovery.LocalPipeline(os.getpid(), self.host_name, address,
                                                          tuple(self.config.stages), self.config.security, sources))

    @property
    def host_name(self) -> str:
        """This host as the site file names it, else the machine's name."""
        return self.config.host or gethostname()

    def report(self) -> wire.StatusReport:
        """This supervisor's answer to a status request."""
        return wire.StatusReport(self.host_name, os.getpid(), self.phase, time.monotonic() - self.board.started_s,
                                 self.board.reports(self.workers), self.counters())

    def _close(self, context: zmq.Context, sockets: list, service: StatusService | None) -> None:
        if service is not None:
            service.close()
        for link in sockets:
            link.close()
        self.security.stop()  # its thread owns a socket of this context
        context.term()

    def _loop(self, control: zmq.Socket, status: zmq.Socket, service: StatusService) -> None:
        while True:
            self.inbox.read(status, service, self.report)
            now_s = time.monotonic()
            self.shutdown.handle_signals(now_s)
            self._check_workers(now_s)
            if self.phase == RUNNING and all(worker.finished for worker in self.workers):
                LOGGER.info("every stage on this host has finished")
                return
            self.shutdown.check_drain(now_s)
            command = self.shutdown.order_due(now_s)
            if command is not None:
                control.send_multipart(wire.encode(wire.Control(command)))
            elif (rewind := self.rewinds.order_due(now_s)) is not None and self.phase == RUNNING:
                control.send_multipart(wire.encode(rewind))
            if self.shutdown.finished(now_s):
                return
            self.board.refresh(self.workers, self.counters())
            if self.metrics is not None:
                self.metrics.publish(now_s, self.report, self.exit_code)

    def _start_sources(self, now_s: float) -> None:
        """Start capture once every other local stage has sent a heartbeat (or after a wait).

        Stages report only after loading their model or cascade and connecting, so a
        live source's first frames are not dropped while the pipeline is still starting.
        """
        pending = [worker for worker in self.workers if worker.role == SOURCE and worker.process is None]
        if not pending or self.phase != RUNNING:
            return
        others = [worker.name for worker in self.workers if worker.role != SOURCE]
        if all(name in self.board.latest for name in others) or now_s - self.board.started_s > SOURCE_START_WAIT_S:
            for worker in pending:
                worker.start(self.log_level, self.config.security)

    def _check_workers(self, now_s: float) -> None:
        self._start_sources(now_s)
        for worker in self.workers:
            if worker.finished or worker.alive():
                continue
            if worker.process is not None and worker.exit_code is None:
                worker.process.join(0)
                worker.exit_code = worker.process.exitcode
                self._on_exit(worker, now_s)
            elif worker.exit_code is not None and now_s >= worker.next_start_s:
                self._restart(worker)

    def _restart(self, worker: Worker) -> None:
        """Start a crashed worker again, unless the pipeline is stopping."""
        if self.phase != RUNNING:
            LOGGER.info("not restarting %s: the pipeline is stopping", worker.label)
            worker.finished = True
            return
        LOGGER.info("restarting %s (restart %d)", worker.label, worker.restarts)
        for source in self.rewinds.after_restart(worker, self.workers, time.monotonic()):
            source.start(self.log_level, self.config.security)
        worker.start(self.log_level, self.config.security)

    def _on_exit(self, worker: Worker, now_s: float) -> None:
        """A worker exited: it is done, unless it crashed while the pipeline runs and is to be restarted."""
        code = worker.exit_code
        worker.finished = True
        if code == USER_QUIT_EXIT_CODE:
            LOGGER.info("window closed; stopping")
            self.shutdown.enter(STOPPING, now_s)
        elif code == 0 or self.phase == STOPPING:
            if worker.role == SINK:
                self.shutdown.enter(STOPPING, now_s)  # every result is written: the pipeline is done
            elif worker.role == SOURCE and self.phase == RUNNING:
                LOGGER.info("source finished; waiting for the last results")
        elif self.phase == DRAINING:  # interrupted: the signal's exit code stands, the drain goes on
            self._note_exit_while_draining(worker)
        elif code == USER_ERROR_EXIT_CODE:  # it said why in one line; a restart would only say it again
            LOGGER.error("%s exited with code %s; stopping the pipeline", worker.label, code)
            self._fail(USER_ERROR_EXIT_CODE, now_s)
        elif code == OUTPUT_FAILED_EXIT_CODE:  # an output failed mid-run (disk full): the run failed
            LOGGER.error("%s could not write its output; stopping the pipeline", worker.label)
            self._fail(CRASH_EXIT_CODE, now_s)
        else:
            self._schedule_restart(worker, now_s)

    def _note_exit_while_draining(self, worker: Worker) -> None:
        """Log a worker lost during the drain: quietly when the user's own signal reached it (Ctrl-C
        goes to the whole process group, and a child just spawned has not yet learnt to ignore it)."""
        if self.shutdown.signal_number is not None and worker.exit_code == -self.shutdown.signal_number:
            LOGGER.info("%s stopped by %s", worker.label, signal.Signals(self.shutdown.signal_number).name)
        else:
            LOGGER.warning("%s exited with code %s while draining; not restarting it", worker.label, worker.exit_code)

    def _schedule_restart(self, worker: Worker, now_s: float) -> None:
        """Restart a crashed worker after its back-off, or give up on it when it crashes too often."""
        policy = self.restart_policy
        worker.crash_times_s = [*policy.forget_old(worker.crash_times_s, now_s), now_s]
        delay_s = policy.restart_delay_s(worker.crash_times_s, now_s)
        if delay_s is None:
            LOGGER.error("giving up on %s: it crashed %d times within %.0f s (last exit code %s); "
                         "stopping the pipeline", worker.label, len(worker.crash_times_s), policy.window_s,
                         worker.exit_code)
            self._fail(CRASH_EXIT_CODE, now_s)
            return
        worker.finished = False  # it comes back
        worker.restarts += 1
        worker.next_start_s = now_s + delay_s
        self.board.note_restart(worker.name)
        LOGGER.warning("%s died (exit code %s); restarting in %.1f s", worker.label, worker.exit_code, delay_s)

    def _fail(self, exit_code: int, now_s: float) -> None:
        """Stop the pipeline (no drain) and exit with ``exit_code``."""
        self.exit_code = exit_code
        self.shutdown.enter(STOPPING, now_s)

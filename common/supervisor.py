"""``fakeblock up``: start every stage, watch heartbeats, restart crashes, stop cleanly.

One shutdown path: SIGINT/SIGTERM (or the end of a lossless source) becomes orders on the
control link.  First "finish": sources end their streams while every link stays open, so
what is in flight drains into the results; once the display has written everything (or
a drain timeout passes) "stop": every stage exits, is joined with a timeout, and only
then is anything terminated.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import replace
import time

import zmq

from fakeblock.common import wire
from fakeblock.common.config import PipelineConfig, detect_threads
from fakeblock.common.processes import CRASH_EXIT_CODE, USER_ERROR_EXIT_CODE, USER_QUIT_EXIT_CODE, Worker
from fakeblock.common.sockets import CONTROL_HWM, STATUS_HWM, bind, make_socket
from fakeblock.common.status_view import StatusBoard

LOGGER = logging.getLogger(__name__)
DRAIN_TIMEOUT_S = 15.0
JOIN_TIMEOUT_S = 5.0
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)
STOP_REPEAT_S = 0.5
PIPELINE_ORDER = ("display", "queue", "classify", "detect", "capture")


class Supervisor:
    """Owns the stage processes of one pipeline on this host."""

    def __init__(self, config: PipelineConfig, log_level: int = logging.INFO):
        self.config, self.log_level = config, log_level
        self.workers = self._plan(config)
        self.board = StatusBoard(config, [worker.name for worker in self.workers])
        self.signals_received = 0
        self.phase = "running"  # running -> draining -> stopping
        self.phase_started_s = 0.0
        self.exit_code = 0
        self._last_stop_sent_s = 0.0

    @staticmethod
    def _plan(config: PipelineConfig) -> list[Worker]:
        workers = [Worker("display", 0, config.display), Worker("queue", 0, None)]
        workers += [Worker("classify", index, config.classify) for index in range(config.classify_workers)]
        detect = replace(config.detect, opencv_threads=detect_threads(config.detect, config.detect_workers))
        workers += [Worker("detect", index, detect) for index in range(config.detect_workers)]
        workers.append(Worker("capture", 0, config.capture))
        return workers

    def run(self) -> int:
        """Run until the source is done, a fatal error, or a signal; return the exit code."""
        context = zmq.Context()
        control = make_socket(context, zmq.PUB, CONTROL_HWM, linger_ms=500)
        status = make_socket(context, zmq.PULL, STATUS_HWM, linger_ms=0)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            bind(control, self.config.endpoints.control)
            bind(status, self.config.endpoints.status)
            for worker in self.workers:
                worker.start(self.config.endpoints, self.log_level)
            with self.board.live(self.config.show_status):
                self._loop(control, status)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._terminate_leftovers()
            control.close()
            status.close()
            context.term()
        self.board.write_stats(self.config.stats, self.workers)
        return self.exit_code

    def _on_signal(self, signal_number, _frame) -> None:
        self.signals_received += 1
        if self.signals_received == 1:
            LOGGER.info("%s: draining and stopping (again to stop at once)", signal.Signals(signal_number).name)
        else:
            LOGGER.info("stopping at once")

    def _loop(self, control: zmq.Socket, status: zmq.Socket) -> None:
        while True:
            self._read_status(status)
            now_s = time.monotonic()
            self._handle_signals(now_s)
            self._check_workers(now_s)
            if self.phase != "running":
                self._send_stops(control, now_s)
                if all(not worker.alive() for worker in self.workers):
                    return
                if self.phase == "stopping" and now_s - self.phase_started_s > JOIN_TIMEOUT_S:
                    return
            self.board.refresh(self.workers)

    def _read_status(self, status: zmq.Socket) -> None:
        if status.poll(100, zmq.POLLIN) == 0:
            return
        while True:
            try:
                frames = status.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                message = wire.decode(frames)
            except ValueError as error:
                LOGGER.debug("dropped a malformed status message: %s", error)
                self.board.malformed += 1
                continue
            if isinstance(message, wire.Status):
                self.board.update(message)

    def _handle_signals(self, now_s: float) -> None:
        if self.signals_received >= 2 and self.phase != "stopping":
            self._enter("stopping", now_s)
        elif self.signals_received == 1 and self.phase == "running":
            self._enter("draining", now_s)

    def _enter(self, phase: str, now_s: float) -> None:
        LOGGER.debug("phase %s -> %s", self.phase, phase)
        self.phase, self.phase_started_s, self._last_stop_sent_s = phase, now_s, 0.0

    def _send_stops(self, control: zmq.Socket, now_s: float) -> None:
        """Repeat stop orders (PUB drops messages to late subscribers, so say it again)."""
        if self.phase == "draining" and now_s - self.phase_started_s > DRAIN_TIMEOUT_S:
            LOGGER.warning("drain took over %.0f s; stopping", DRAIN_TIMEOUT_S)
            self._enter("stopping", now_s)
        if now_s - self._last_stop_sent_s < STOP_REPEAT_S:
            return
        self._last_stop_sent_s = now_s
        command = "finish" if self.phase == "draining" else "stop"
        control.send_multipart(wire.encode(wire.Control(command)))

    def _check_workers(self, now_s: float) -> None:
        for worker in self.workers:
            if worker.finished or worker.alive():
                continue
            if worker.process is not None and worker.exit_code is None:
                worker.process.join(0)
                worker.exit_code = worker.process.exitcode
                self._on_exit(worker, now_s)
            elif worker.exit_code is not None and not worker.finished and now_s >= worker.next_start_s:
                LOGGER.info("restarting %s (restart %d)", worker.name, worker.restarts)
                worker.start(self.config.endpoints, self.log_level)

    def _on_exit(self, worker: Worker, now_s: float) -> None:
        code = worker.exit_code
        if code == USER_QUIT_EXIT_CODE:
            LOGGER.info("window closed; stopping")
            worker.finished = True
            self._enter("stopping", now_s)
            return
        if code == 0 or self.phase == "stopping":
            worker.finished = True
            if worker.stage == "display" and self.phase != "stopping":
                self._enter("stopping", now_s)  # every result is written: the pipeline is done
            elif worker.stage == "capture" and self.phase == "running":
                LOGGER.info("source finished; waiting for the last results")
            return
        if code == USER_ERROR_EXIT_CODE or worker.stage == "capture" or self.phase != "running":
            LOGGER.error("%s exited with code %s; stopping the pipeline", worker.name, code)
            worker.finished = True
            self.exit_code = USER_ERROR_EXIT_CODE if code == USER_ERROR_EXIT_CODE else CRASH_EXIT_CODE
            self._enter("stopping", now_s)
            return
        backoff_s = RESTART_BACKOFF_S[min(worker.restarts, len(RESTART_BACKOFF_S) - 1)]
        worker.restarts += 1
        worker.next_start_s = now_s + backoff_s
        self.board.note_restart(worker.name)
        LOGGER.warning("%s died (exit code %s); restarting in %.1f s", worker.name, code, backoff_s)

    def _terminate_leftovers(self) -> None:
        deadline_s = time.monotonic() + JOIN_TIMEOUT_S
        for worker in self.workers:
            if worker.process is not None:
                worker.process.join(max(0.0, deadline_s - time.monotonic()))
        for worker in self.workers:
            if worker.alive():
                LOGGER.warning("%s did not stop in time; terminating it", worker.name)
                worker.process.terminate()
                worker.process.join(2.0)
            if worker.alive():
                worker.process.kill()
                worker.process.join(1.0)

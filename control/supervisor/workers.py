"""Starting one stage worker as a child process (spawn: no inherited sockets or threads)."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from fakeblock.common.config import PipelineConfig
from fakeblock.common.endpoints import Endpoints, endpoints_for_stage, with_ipc_links
from fakeblock.common.errors import CRASH_EXIT_CODE, USER_ERROR_EXIT_CODE, OutputFailed, UserError
from fakeblock.common.process_title import set_process_title
from fakeblock.common.runtime import STAGE_VARIABLE, SUPERVISOR_PID_VARIABLE
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.stages import STAGES, StageSpec, stage_spec
from fakeblock.common.wire import worker_name
from fakeblock.common.wording import worker_labels

LOGGER = logging.getLogger(__name__)
TERMINATE_WAIT_S = 2.0  # after SIGTERM, before SIGKILL
KILL_WAIT_S = 1.0


def run_stage(entry: str, config: Any, endpoints: Endpoints, worker: int, security: SecurityConfig) -> int:
    """Run one stage's loop in this process: import its ``module:function`` entry point and call it.

    Only the stage's own module is imported, so a process pays for TensorFlow only when
    its stage needs it.
    """
    module_name, _, function_name = entry.partition(":")
    run = getattr(importlib.import_module(module_name), function_name)
    return run(config, endpoints, worker, security)


def child_main(stage: str, config: Any, endpoints: Endpoints, worker: int, log_level: int,
               security_config: SecurityConfig | None = None, entry: str | None = None,
               label: str | None = None) -> None:
    """Entry point of a supervised child: ignore Ctrl-C (the supervisor orders the stop).

    ``entry`` is the stage's entry point (default: the registry's for ``stage``);
    ``security_config`` (keys, insecure) is handed to it, None meaning the secure default;
    ``label`` begins its log lines (default ``stage/worker``; see :attr:`Worker.label`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Started with SIGINT blocked (see Worker.start): a Ctrl-C that came meanwhile is discarded now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    logging.basicConfig(level=log_level, stream=sys.stderr, datefmt="%H:%M:%S",
                        format=f"%(asctime)s %(levelname)s {label or worker_name(stage, worker)}: %(message)s")
    set_process_title(worker_name(stage, worker))
    entry = entry or stage_spec(stage).entry
    try:
        code = run_stage(entry, config, endpoints, worker, security_config or SecurityConfig())
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        code = error.exit_code if isinstance(error, OutputFailed) else USER_ERROR_EXIT_CODE
    except Exception:  # a bug: log it fully, the supervisor restarts the stage
        logging.getLogger(stage).exception("crashed")  # the line's prefix names the worker
        code = CRASH_EXIT_CODE
    sys.exit(code)


@dataclass
class Worker:
    """One supervised stage process and its restart bookkeeping."""

    stage: str
    worker: int
    config: Any
    endpoints: Endpoints | None = None
    entry: str | None = None
    role: str | None = None  # its drain role in the registry: source, sink or None
    process: Any = None
    restarts: int = 0
    next_start_s: float = 0.0
    finished: bool = False
    exit_code: int | None = None
    crash_times_s: list[float] = field(default_factory=list)  # monotonic, the recent ones (restarts.py)
    # How people read it: the stage alone when it is the stage's only worker here (plan_workers
    # sets it with worker_labels); ``stage/worker`` when not given.
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.name

    @property
    def name(self) -> str:
        """``stage/worker``: its key in heartbeats, stats and ``fakeblock status``."""
        return worker_name(self.stage, self.worker)

    def start(self, log_level: int, security_config: SecurityConfig | None = None) -> None:
        """Spawn the process (a fresh interpreter: ZeroMQ context and TensorFlow start clean)."""
        context = multiprocessing.get_context("spawn")
        # A spawned child copies the environment: this names its supervisor (so it can
        # notice being orphaned) and itself (so `ps e` and tests can tell stages apart).
        os.environ[SUPERVISOR_PID_VARIABLE] = str(os.getpid())
        os.environ[STAGE_VARIABLE] = self.name
        # A restarted stage may continue rather than begin (the display appends its results).
        config = self.config.for_restart() if self.restarts and hasattr(self.config, "for_restart") else self.config
        self.process = context.Process(target=child_main, name=f"fakeblock-{self.stage}-{self.worker}",
                                       args=(self.stage, config, self.endpoints, self.worker, log_level,
                                             security_config, self.entry, self.label))
        # Ctrl-C goes to the terminal's whole process group. The new interpreter inherits a
        # blocked SIGINT and keeps it pending until child_main ignores it, so a Ctrl-C during
        # its start-up does not kill it mid-import; here the signal waits only as long as the
        # spawn takes, then reaches the supervisor's handler.
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        self.exit_code = None

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.is_alive()

    @property
    def pid(self) -> int:
        """The current process's id, 0 before it started."""
        return self.process.pid if self.process is not None and self.process.pid else 0


def stop_leftovers(workers: list[Worker], deadline_s: float) -> None:
    """Wait until ``deadline_s`` (monotonic) for every worker to exit, then SIGTERM the rest, then SIGKILL.

    SIGTERM first: a stage that is still running handles it like a stop order, so the
    display still writes whole lines and closes its files.
    """
    _join_all(workers, deadline_s)
    leftovers = [worker for worker in workers if worker.alive()]
    for worker in leftovers:
        LOGGER.warning("%s did not stop in time; terminating it", worker.label)
        worker.process.terminate()
    _join_all(leftovers, time.monotonic() + TERMINATE_WAIT_S)
    for worker in leftovers:
        if worker.alive():
            LOGGER.warning("%s ignored SIGTERM; killing it", worker.label)
            worker.process.kill()
    _join_all(leftovers, time.monotonic() + KILL_WAIT_S)


def _join_all(workers: list[Worker], deadline_s: float) -> None:
    """Join every started worker's process, all of them by one deadline."""
    for worker in workers:
        if worker.process is not None:
            worker.process.join(max(0.0, deadline_s - time.monotonic()))


def plan_workers(config: PipelineConfig, stages: tuple[StageSpec, ...] = STAGES) -> list[Worker]:
    """The workers of the stages run here, each with its own endpoints.

    Stages that bind links come first, downstream first, then the others upstream from
    the sink: every address is listened on before its peers connect, and sources (which
    the supervisor starts last anyway) find their readers.
    """
    endpoints = with_ipc_links(config.endpoints, tuple(link for spec in stages for link in spec.links))
    ordered = [spec for spec in reversed(stages) if spec.binds] + [spec for spec in reversed(stages) if not spec.binds]
    workers: list[Worker] = []
    for spec in ordered:
        if spec.name in config.stages:
            workers += _workers_of(spec, config, endpoints)
    labels = worker_labels(worker.name for worker in workers)
    for worker in workers:
        worker.label = labels[worker.name]
    return workers


def _workers_of(spec: StageSpec, config: PipelineConfig, endpoints: Endpoints) -> list[Worker]:
    """One stage's workers: one per capture for a per-capture stage, else its worker count."""
    if spec.per_capture:
        return [Worker(spec.name, slot.index, slot.config, slot.endpoints(endpoints), spec.entry,
                       spec.drain) for slot in config.capture_slots()]
    count = getattr(config, spec.workers_field) if spec.workers_field else 1
    stage_config: Any = getattr(config, spec.config_field) if spec.config_field else None
    if hasattr(stage_config, "for_workers"):  # settings that depend on how many workers share the host
        stage_config = stage_config.for_workers(count, streams=len(endpoints.all_frames()))
    own = endpoints_for_stage(endpoints, config.binds, spec.binds, spec.rewire)
    return [Worker(spec.name, index, stage_config, own, spec.entry, spec.drain) for index in range(count)]

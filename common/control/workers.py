"""Starting one stage worker as a child process (spawn: no inherited sockets or threads)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

from fakeblock.common.endpoints import Endpoints
from fakeblock.common.errors import CRASH_EXIT_CODE, USER_ERROR_EXIT_CODE, UserError
from fakeblock.common.security import SecurityConfig

LOGGER = logging.getLogger(__name__)


def run_stage(stage: str, config: Any, endpoints: Endpoints, worker: int) -> int:
    """Run one stage's loop in this process; imports only what that stage needs."""
    if stage == "capture":
        from fakeblock.capture.stage import run_capture
        return run_capture(config, endpoints, worker)
    if stage == "detect":
        from fakeblock.detect.stage import run_detect
        return run_detect(config, endpoints, worker)
    if stage == "queue":
        from fakeblock.classify.queue import run_queue
        return run_queue(endpoints, worker)
    if stage == "classify":
        from fakeblock.classify.stage import run_classify
        return run_classify(config, endpoints, worker)
    if stage == "display":
        from fakeblock.display.stage import run_display
        return run_display(config, endpoints, worker)
    raise ValueError(f"unknown stage {stage!r}")


def child_main(stage: str, config: Any, endpoints: Endpoints, worker: int, log_level: int,
               security_config: SecurityConfig | None = None) -> None:
    """Entry point of a supervised child: ignore Ctrl-C (the supervisor orders the stop).

    ``security_config`` (keys, insecure) becomes this process's setting before the stage
    makes any socket; None keeps the secure default.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s {stage}/{worker}: %(message)s", datefmt="%H:%M:%S")
    from fakeblock.common.security import set_process_security

    set_process_security(security_config or SecurityConfig())

    try:
        code = run_stage(stage, config, endpoints, worker)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        code = USER_ERROR_EXIT_CODE
    except Exception:  # a bug: log it fully, the supervisor restarts the stage
        logging.getLogger(stage).exception("%s/%d crashed", stage, worker)
        code = CRASH_EXIT_CODE
    sys.exit(code)


@dataclass
class Worker:
    """One supervised stage process and its restart bookkeeping."""

    stage: str
    worker: int
    config: Any
    endpoints: Endpoints | None = None
    process: Any = None
    restarts: int = 0
    next_start_s: float = 0.0
    finished: bool = False
    exit_code: int | None = None
    history: list = field(default_factory=list)

    @property
    def name(self) -> str:
        """``stage/worker`` for logs and the status table."""
        return f"{self.stage}/{self.worker}"

    def start(self, log_level: int, security_config: SecurityConfig | None = None) -> None:
        """Spawn the process (a fresh interpreter: ZeroMQ context and TensorFlow start clean)."""
        context = multiprocessing.get_context("spawn")
        # A spawned child copies the environment: this names its supervisor (so it can
        # notice being orphaned) and itself (so `ps e` and tests can tell stages apart).
        os.environ["FAKEBLOCK_SUPERVISOR_PID"] = str(os.getpid())
        os.environ["FAKEBLOCK_STAGE"] = self.name
        self.process = context.Process(target=child_main, name=f"fakeblock-{self.stage}-{self.worker}",
                                       args=(self.stage, self.config, self.endpoints, self.worker, log_level,
                                             security_config))
        self.process.start()
        self.exit_code = None

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.is_alive()

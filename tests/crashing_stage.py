"""A test-only stage that raises as it starts, every time: the supervisor must give up on it.

Run through the registry like any stage (``insert_stage``), so the supervisor sees what a
real bug at start-up gives it: ``child_main`` logs the traceback and the process exits
with the crash code, 1.
"""

from __future__ import annotations

from fakeblock.common.endpoints import Endpoints
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.stages import StageSpec

CRASHING = StageSpec("crashing", "tests.crashing_stage:run_crashing")


def run_crashing(_config: None, _endpoints: Endpoints, worker: int = 0, _security: SecurityConfig | None = None) -> int:
    """Raise at once, as a stage with a bug in its start-up would."""
    raise RuntimeError(f"crashing/{worker} fails at start on purpose (a test stage)")

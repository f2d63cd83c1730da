"""Flow decisions for the capture stage: live or lossless, realtime pacing, the fps gauge.

Pure and clock-injectable, so they are tested without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

FLOW_LIVE = "live"
FLOW_LOSSLESS = "lossless"
# A replay that falls further behind than this (a stall, a suspended laptop) restarts
# its schedule instead of bursting frames to catch up.
MAX_LAG_S = 1.0


class Pacer:
    """Schedules frame ``n`` of a replay ``n / fps`` seconds after the first one."""

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic, max_lag_s: float = MAX_LAG_S):
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps, self.clock, self.max_lag_s = fps, clock, max_lag_s
        self.start_s: float | None = None

    def delay_s(self, frame_index: int) -> float:
        """Seconds to wait before frame ``frame_index`` is due (0 when it is due or late)."""
        now_s = self.clock()
        if self.start_s is None:
            self.start_s = now_s - frame_index / self.fps
        due_s = self.start_s + frame_index / self.fps
        lag_s = now_s - due_s
        if lag_s > self.max_lag_s:
            self.start_s += lag_s
            return 0.0
        return max(0.0, -lag_s)


class RateMeter:
    """Events per second over the last ``window_s`` seconds (for the ``fps`` gauge)."""

    def __init__(self, window_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.window_s, self.clock = window_s, clock
        self.times_s: deque[float] = deque()

    def tick(self) -> float:
        """Record one event now and return the current rate."""
        now_s = self.clock()
        self.times_s.append(now_s)
        while now_s - self.times_s[0] > self.window_s:
            self.times_s.popleft()
        span_s = now_s - self.times_s[0]
        return (len(self.times_s) - 1) / span_s if span_s > 0 else 0.0


def choose_flow_mode(source_live: bool, live_override: bool | None) -> str:
    """``live`` (drop stale frames) or ``lossless`` (block, never drop); the user's choice wins."""
    live = source_live if live_override is None else live_override
    return FLOW_LIVE if live else FLOW_LOSSLESS


def source_is_live(source: str | None, realtime: bool, live_override: bool | None = None) -> bool:
    """Whether a capture will run live, judged from its settings alone (it may run on another host).

    Camera indices and stream URLs are live, as is anything paced by ``realtime``; files,
    folders and the demo are lossless.  No source means camera 0 when there is one: live.
    """
    if live_override is not None:
        return live_override
    spec = (source or "").strip()
    return realtime or not spec or spec.isdigit() or "://" in spec

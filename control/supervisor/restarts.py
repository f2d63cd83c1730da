"""When the supervisor starts a crashed stage worker again, and when it gives up on it.

A worker that crashes (any exit but 0, a user error or a closed window) is started again
after a back-off that grows with its *recent* crashes, those within ``RESTART_WINDOW_S``:
0.5 s after the first, doubling up to 8 s.  Older crashes are forgotten, so a stage that
crashes once an hour is always restarted, after the shortest wait.  A worker that crashes
more than ``MAX_RESTARTS`` times within the window is given up on: the supervisor stops
the pipeline and exits 1.

Why 5 within 60 s: a stage that crashes at start every time uses the five back-offs
(0.5 + 1 + 2 + 4 + 8 = 15.5 s) plus six start-ups, well inside one window, so a broken
stage is reported in about 20-30 s rather than never; a stage that runs for a while
between crashes (a flaky camera driver, a rare bad frame) makes slower progress and is
kept going.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class RestartPolicy:
    """How many crashes within how long a worker is restarted after, and how long each wait is."""

    max_restarts: int = MAX_RESTARTS
    window_s: float = RESTART_WINDOW_S
    backoff_s: tuple[float, ...] = RESTART_BACKOFF_S

    def recent_crashes(self, crash_times_s: list[float], now_s: float) -> int:
        """How many of the crashes at ``crash_times_s`` (monotonic seconds) lie within the window."""
        return sum(1 for crash_s in crash_times_s if now_s - crash_s < self.window_s)

    def restart_delay_s(self, crash_times_s: list[float], now_s: float) -> float | None:
        """The wait before restarting a worker whose latest crash is the last of ``crash_times_s``.

        None means give up: it crashed more than ``max_restarts`` times within the window.
        """
        recent = self.recent_crashes(crash_times_s, now_s)
        if recent > self.max_restarts:
            return None
        return self.backoff_s[min(max(recent, 1), len(self.backoff_s)) - 1]

    def forget_old(self, crash_times_s: list[float], now_s: float) -> list[float]:
        """Only the crashes still within the window (a long-running supervisor keeps no more)."""
        return [crash_s for crash_s in crash_times_s if now_s - crash_s < self.window_s]

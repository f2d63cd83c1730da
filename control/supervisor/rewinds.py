"""Lossless across restarts: after any stage worker restarts, every source sends its stream again.

A crashed worker loses the frames it held (in its queues, its batch, the display's reorder
buffer).  Rather than track each frame's progress, a lossless replay is made whole again
from its one durable copy, the file: the supervisor orders every local source to start
again from its first frame in a new *epoch* (``wire.REWIND``).  Detect's trackers follow
one epoch from its first frame, so every frame gets exactly the boxes, ids and scores it
got the first time; the display writes no frame twice (a restarted one re-reads its file
and re-runs the frames it had written only to rebuild the smoothing); so the results file
ends identical to an uninterrupted run.  Memory stays bounded: nothing is kept for
resending, the file is read again.

A source that crashed is itself restarted in the new epoch, and one that had already
finished is started again.  Live runs are not rewound (live work is dropped by design).
Only the sources this supervisor runs are rewound: across several hosts a crash on a
host without a source is not made up for.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from fakeblock.common import wire
from fakeblock.common.config import PipelineConfig
from fakeblock.common.stages import SOURCE
from fakeblock.control.supervisor.workers import Worker

LOGGER = logging.getLogger(__name__)
# PUB drops orders to a subscriber that is not yet connected: say it a few times.
REWIND_REPEAT_S = 0.5
REWIND_ORDERS = 4


class Rewinds:
    """The epoch of this host's lossless sources, and the rewind orders still to send."""

    def __init__(self, config: PipelineConfig):
        self.lossless = any(slot.config.live is False for slot in config.capture_slots())
        self.epoch = 0
        self._orders_left, self._next_order_s = 0, 0.0

    def prepare(self, workers: list[Worker]) -> None:
        """Where sources are rewound, detect follows each epoch from its first frame."""
        for worker in workers:
            if self.lossless and hasattr(worker.config, "follow_epochs"):
                worker.config = replace(worker.config, follow_epochs=True)

    def after_restart(self, restarted: Worker, workers: list[Worker], now_s: float) -> list[Worker]:
        """A worker is about to start again: begin a new epoch; returns the sources to (re)start."""
        if not self.lossless:
            return []
        self.epoch += 1
        to_start = []
        for source in (worker for worker in workers if worker.role == SOURCE):
            if source is restarted or (source.finished and source.exit_code == 0):
                source.config = source.config.for_epoch(self.epoch)
                if source is not restarted:
                    source.finished, source.exit_code = False, None
                    to_start.append(source)
            else:
                self._orders_left, self._next_order_s = REWIND_ORDERS, now_s
        LOGGER.warning("%s restarted: the sources send their streams again (epoch %d) for the work it lost",
                       restarted.label, self.epoch)
        return to_start

    def order_due(self, now_s: float) -> wire.Control | None:
        """The rewind order to send now, if one is due."""
        if self._orders_left <= 0 or now_s < self._next_order_s:
            return None
        self._orders_left -= 1
        self._next_order_s = now_s + REWIND_REPEAT_S
        return wire.Control(wire.REWIND, "", self.epoch)  # only sources act on it


"""The terminal's words: one place for how counts, rates and worker names read to people.

Every line a user sees (logs, the live table, ``fakeblock status``) formats its numbers
and names here, so that the same thing reads the same way everywhere: ``1 frame`` and
``2 frames``, ``24.7 fps``, and ``detect`` for a stage's only worker but ``detect/1``
when the stage has several.
"""

from __future__ import annotations

from collections.abc import Iterable

WORKER_SEPARATOR = "/"
IN_PER_S = "in/s"
OUT_PER_S = "out/s"


def plural(count: float, noun: str, plural_noun: str | None = None) -> str:
    """``1 frame``, ``0 frames``, ``2 frames`` (``plural_noun`` when adding an s is wrong)."""
    number = int(count) if float(count).is_integer() else count
    return f"{number} {noun if number == 1 else plural_noun or noun + 's'}"


def frame_rate(value: float | None) -> str:
    """A frame rate to one decimal, ``24.7 fps``; ``unknown fps`` without one."""
    return "unknown fps" if value is None else f"{value:.1f} fps"


def rates(rate_in: float, rate_out: float) -> str:
    """A worker's two rates, named as the table's columns: ``29.6 in/s, 88.8 out/s``."""
    return f"{rate_in:.1f} {IN_PER_S}, {rate_out:.1f} {OUT_PER_S}"


def stage_of(worker_name: str) -> str:
    """The stage of a ``stage/worker`` name: ``detect`` for ``detect/1``."""
    return worker_name.split(WORKER_SEPARATOR)[0]


def worker_labels(worker_names: Iterable[str]) -> dict[str, str]:
    """Each ``stage/worker`` name as people read it: the stage alone when it is the stage's only worker."""
    names = list(worker_names)
    stages = [stage_of(name) for name in names]
    return {name: stage if stages.count(stage) == 1 else name for name, stage in zip(names, stages, strict=True)}

"""Pure per-frame work of the display stage: output records, frame rates and latency.

Nothing here touches a socket, a file or a window, so every function is tested on small
arrays and hand-made messages.  The overlay is drawn by :mod:`fakeblock.display.overlay`
and frames are put back in order by :mod:`fakeblock.display.order`.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable

import numpy as np

from fakeblock.common import wire
from fakeblock.common.counters import (
    LATENCY_BUCKET_COUNTERS,
    LATENCY_BUCKETS_S,
    LATENCY_BY_PERCENTILE,
    LATENCY_COUNT,
    LATENCY_SUM_S,
)
from fakeblock.common.model_io import EMOTIONS

SCORE_DECIMALS = 4
TIME_DECIMALS = 3
DEFAULT_FPS = 30.0
# A source claiming more than this is mislabelled (or its timestamps are): use the default.
MAX_PLAUSIBLE_FPS = 240.0
PERCENTILES = (50, 95, 99)
LATENCY_SAMPLES = 2048


def result_record(result: wire.Result, raw: wire.Result | None = None) -> dict:
    """One results-file line: stream, frame, time and every face's box, top emotion and scores.

    ``{"stream": "office-woman", "frame": 0, "time_s": 0.0, "faces": [{"box": [x, y, w, h],
    "track": 3, "emotion": "happy", "scores": {"angry": 0.01, ...}, "scores_raw": {...}}]}``
    with scores rounded to four decimals and the frame's position in its source rounded to
    milliseconds.  With tracking, ``track`` names the face across frames, ``scores`` (and
    ``emotion``, their top) are smoothed over the track and ``scores_raw`` are this
    frame's own, from ``raw``; without tracking neither key appears.
    """
    faces = []
    for index, (box, scores) in enumerate(zip(result.boxes, result.scores, strict=True)):
        face: dict = {"box": [int(value) for value in box]}
        if result.tracks:
            face["track"] = int(result.tracks[index])
        face["emotion"] = EMOTIONS[int(np.argmax(scores))]
        face["scores"] = _named_scores(scores)
        if result.tracks and raw is not None:
            face["scores_raw"] = _named_scores(raw.scores[index])
        faces.append(face)
    return {"stream": result.info.stream, "frame": result.info.frame_number,
            "time_s": round(result.info.position_s, TIME_DECIMALS), "faces": faces}


def _named_scores(scores) -> dict[str, float]:
    return {name: round(float(score), SCORE_DECIMALS) for name, score in zip(EMOTIONS, scores, strict=True)}


def latency_percentiles(samples_ms: Iterable[float]) -> dict[str, float]:
    """``{"p50": .., "p95": .., "p99": ..}`` of the samples (linear interpolation); ``{}`` when empty."""
    values = np.fromiter(samples_ms, dtype=np.float64)
    if values.size == 0:
        return {}
    percentiles = np.percentile(values, PERCENTILES)
    return {f"p{rank}": float(value) for rank, value in zip(PERCENTILES, percentiles, strict=True)}


def fps_from_positions(first: wire.FrameInfo, second: wire.FrameInfo) -> float:
    """Frame rate implied by two frames' numbers and source positions, or ``DEFAULT_FPS``."""
    frames = second.frame_number - first.frame_number
    seconds = second.position_s - first.position_s
    if frames <= 0 or seconds <= 0:
        return DEFAULT_FPS
    fps = frames / seconds
    return fps if 1.0 <= fps <= MAX_PLAUSIBLE_FPS else DEFAULT_FPS


class LatencyWindow:
    """The most recent capture-to-result latencies, in milliseconds, and a histogram of all of them.

    The percentiles describe the last ``max_samples`` results; the histogram's buckets
    (``LATENCY_BUCKETS_S``), count and sum cover every result since the display started,
    as a Prometheus histogram does.
    """

    def __init__(self, max_samples: int = LATENCY_SAMPLES):
        self.samples_ms: deque[float] = deque(maxlen=max_samples)
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)  # per bucket, not cumulative; the last: above all
        self.sum_s = 0.0

    def add(self, captured_s: float, now_s: float) -> None:
        """Record one result that arrived at ``now_s`` for a frame captured at ``captured_s``.

        Both are ``time.monotonic()`` readings; a negative difference means the frame was
        captured on another host (another clock), which says nothing about latency.
        """
        latency_s = now_s - captured_s
        if latency_s >= 0:
            self.samples_ms.append(latency_s * 1000.0)
            # A latency equal to a bound belongs to that bound's bucket (Prometheus's "le").
            self.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS_S, latency_s)] += 1
            self.sum_s += latency_s

    def counters(self) -> dict[str, float]:
        """``latency_p50_ms``, ``_p95_ms`` and ``_p99_ms`` (once there are samples), and always the
        cumulative bucket counters, ``latency_count`` and ``latency_sum_s``."""
        percentiles = {LATENCY_BY_PERCENTILE[name]: round(value, 2)
                       for name, value in latency_percentiles(self.samples_ms).items()}
        cumulative, buckets = 0, {}
        for bound_s, count in zip(LATENCY_BUCKETS_S, self.bucket_counts, strict=False):
            cumulative += count
            buckets[LATENCY_BUCKET_COUNTERS[bound_s]] = cumulative
        return {**percentiles, **buckets, LATENCY_COUNT: sum(self.bucket_counts), LATENCY_SUM_S: self.sum_s}

"""The counter names: distinct, and every one of them fits in one heartbeat the wire accepts."""

from __future__ import annotations

import pytest

from fakeblock.common import counters, wire
from fakeblock.common.wire_fields import MAX_COUNTERS, MAX_NAME_CHARS
from fakeblock.display.core import LatencyWindow

NAMES = {name: value for name, value in vars(counters).items() if name.isupper() and isinstance(value, str)}


def test_every_counter_name_is_distinct_and_spelled_as_its_constant():
    assert len(set(NAMES.values())) == len(NAMES)
    assert all(value == name.lower() for name, value in NAMES.items())


def test_a_heartbeat_carrying_every_counter_decodes():
    every = [*NAMES.values(), *counters.LATENCY_BUCKET_COUNTERS.values()]
    assert len(set(every)) == len(every)
    assert len(every) <= MAX_COUNTERS and all(len(value) <= MAX_NAME_CHARS for value in every)
    status = wire.Status("display", 0, 42, {value: 1.0 for value in every})
    assert wire.decode(wire.encode(status)) == status


def test_the_display_reports_latency_under_the_named_counters():
    window = LatencyWindow()
    window.add(10.0, 10.25)
    reported = window.counters()
    assert {name: reported[name] for name in counters.LATENCY_BY_PERCENTILE.values()} == {
        counters.LATENCY_P50_MS: 250.0, counters.LATENCY_P95_MS: 250.0, counters.LATENCY_P99_MS: 250.0}
    assert reported[counters.LATENCY_COUNT] == 1 and reported[counters.LATENCY_SUM_S] == 0.25
    assert reported["latency_le_250_ms"] == 1 and reported["latency_le_100_ms"] == 0


def test_the_latency_histogram_is_cumulative_and_puts_a_bound_in_its_own_bucket():
    window = LatencyWindow(max_samples=2)
    for latency_s in (0.005, 0.01, 0.03, 0.3, 20.0):  # 20 s: above every bound, only in the count
        window.add(0.0, latency_s)
    reported = window.counters()
    buckets = [reported[counters.LATENCY_BUCKET_COUNTERS[bound_s]] for bound_s in counters.LATENCY_BUCKETS_S]
    assert buckets == [2, 2, 3, 3, 3, 4, 4, 4, 4, 4]
    assert reported[counters.LATENCY_COUNT] == 5  # the whole run, although the percentiles keep only 2 samples
    assert reported[counters.LATENCY_SUM_S] == pytest.approx(20.345)


def test_a_display_heartbeat_stays_within_the_wires_counter_limit():
    window = LatencyWindow()
    window.add(1.0, 1.02)
    display_counters = {**window.counters(), **{name: 1.0 for name in NAMES.values()
                                                if not name.startswith("malformed_")}}
    assert len(display_counters) <= MAX_COUNTERS

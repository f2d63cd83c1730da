"""The counter names: distinct, and every one of them fits in one heartbeat the wire accepts."""

from __future__ import annotations

from fakeblock.common import counters, wire
from fakeblock.common.wire_fields import MAX_COUNTERS, MAX_NAME_CHARS
from fakeblock.display.core import LatencyWindow

NAMES = {name: value for name, value in vars(counters).items() if name.isupper() and isinstance(value, str)}


def test_every_counter_name_is_distinct_and_spelled_as_its_constant():
    assert len(set(NAMES.values())) == len(NAMES)
    assert all(value == name.lower() for name, value in NAMES.items())


def test_a_heartbeat_carrying_every_counter_decodes():
    assert len(NAMES) <= MAX_COUNTERS and all(len(value) <= MAX_NAME_CHARS for value in NAMES.values())
    status = wire.Status("display", 0, 42, {value: 1.0 for value in NAMES.values()})
    assert wire.decode(wire.encode(status)) == status


def test_the_display_reports_latency_under_the_named_counters():
    window = LatencyWindow()
    window.add(10.0, 10.25)
    assert window.counters() == {counters.LATENCY_P50_MS: 250.0, counters.LATENCY_P95_MS: 250.0,
                                 counters.LATENCY_P99_MS: 250.0}

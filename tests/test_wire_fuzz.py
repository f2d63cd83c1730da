"""Seeded, structure-aware fuzzing of the wire decoder: any message is either a valid
message or a ``ValueError``, never another exception (which would crash a stage)."""

from __future__ import annotations

import math

import msgpack
import numpy as np

from fakeblock.common import wire
from tests.helpers import decode_hostile, fuzz_generator, reproduce_with

DEFAULT_SEED = 20261201  # FAKEBLOCK_FUZZ_SEED overrides it (tests/helpers.py: fuzz_seed)
MESSAGES = 12000
INFO = wire.FrameInfo("clip", 3, 0.1, 5.0)


def samples() -> list[wire.Message]:
    """One valid message of every kind."""
    worker = wire.WorkerReport("detect", 0, 42, True, "running", 0, 30.0, 30.0, {"frames_in": 3})
    return [wire.Frame(INFO, np.zeros((4, 6, 3), np.uint8), True),
            wire.Faces(INFO, ((1, 1, 2, 2),), np.zeros((1, 48, 48), np.uint8), (5,)),
            wire.Result(INFO, ((1, 1, 2, 2),), ((0.1,) * 7,), (5,)), wire.EndOfStream("clip", 10),
            wire.StreamStart("clip", 10),
            wire.Control("stop"), wire.Status("detect", 0, 42, {"frames_in": 1.0}), wire.StatusRequest(),
            wire.StatusReport("host", 42, "running", 1.5, (worker,), {"malformed_heartbeats": 1}),
            wire.Ready("detect/0@host:42", 1, True)]


def hostile_value(generator: np.random.Generator, depth: int = 0):
    """A value of a random type, often one a field does not expect."""
    choice = int(generator.integers(0, 12 if depth < 2 else 9))
    simple = [None, True, False, int(generator.integers(-2**63, 2**63 - 1)), -1, 2**53 + 1, math.nan, math.inf,
              float(generator.normal())]
    if choice < len(simple):
        return simple[choice]
    if choice == 9:
        return "x" * int(generator.integers(0, 300))
    if choice == 10:
        return [hostile_value(generator, depth + 1) for _ in range(int(generator.integers(0, 5)))]
    return {str(generator.integers(0, 9)): hostile_value(generator, depth + 1)
            for _ in range(int(generator.integers(0, 4)))}


def mutate(frames: list, generator: np.random.Generator) -> list:
    """A hostile variant of a valid message's frames."""
    header = msgpack.unpackb(bytes(frames[0]), raw=False)
    for key in list(header):
        if generator.random() < 0.3:
            header[key] = hostile_value(generator)
        elif generator.random() < 0.05:
            del header[key]
    if generator.random() < 0.1:
        header[str(hostile_value(generator))] = hostile_value(generator)
    parts = [msgpack.packb(header, use_bin_type=True), *[bytes(part) for part in frames[1:]]]
    roll = generator.random()
    if roll < 0.1:
        parts.append(generator.bytes(int(generator.integers(0, 64))))
    elif roll < 0.15:
        parts = parts * int(generator.integers(2, 70))
    elif roll < 0.2 and len(parts) > 1:
        parts[1] = parts[1][:int(generator.integers(0, len(parts[1]) + 1))]
    elif roll < 0.25:
        parts[0] = parts[0][:int(generator.integers(0, len(parts[0]) + 1))]
    return parts


def test_every_hostile_message_is_a_message_or_a_value_error():
    generator, seed = fuzz_generator(DEFAULT_SEED)
    valid = [wire.encode(message) for message in samples()]
    decoded = 0
    for index in range(MESSAGES):
        decoded += decode_hostile(mutate(valid[index % len(valid)], generator), seed, index)
    refused = MESSAGES - decoded
    assert decoded > 0 and refused > MESSAGES // 2, (decoded, refused, reproduce_with(seed))


def test_a_kind_of_the_wrong_type_is_refused_not_raised():
    for kind in (["x"], {"a": 1}, 7, None, b"frame"):
        try:
            wire.decode([msgpack.packb({"v": wire.SCHEMA_VERSION, "kind": kind}, use_bin_type=True)])
        except ValueError as error:
            assert "kind" in str(error)
        else:
            raise AssertionError(f"kind {kind!r} was accepted")
    for not_frames in (None, b"bytes", 5):
        try:
            wire.decode(not_frames)
        except ValueError:
            pass

"""The wire codec: round trips, and hostile input that must raise ValueError, never crash."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from fakeblock.common import wire
from fakeblock.common.wire import MAX_LEASE_LOAD
from tests.helpers import decode_hostile, fuzz_generator

INFO = wire.FrameInfo("office-woman", 7, 0.2336, 1234.5)


def header_of(message) -> dict:
    return msgpack.unpackb(wire.encode(message)[0])


def rebuild(header: dict, *payload) -> list:
    return [msgpack.packb(header, use_bin_type=True), *payload]


REPORTED_WORKER = wire.WorkerReport("classify", 1, 4243, True, "running", 2, 25.5, 25.0,
                                    {"frames_in": 100, "batch_size": 8})


def frame_message(shape=(4, 6, 3)) -> wire.Frame:
    return wire.Frame(INFO, np.arange(np.prod(shape), dtype=np.uint8).reshape(shape))


@pytest.mark.parametrize("message", [
    frame_message(),
    frame_message((5, 7)),
    wire.Faces(INFO, ((1, 2, 48, 50), (60, 5, 30, 30)), np.full((2, 48, 48), 9, np.uint8)),
    wire.Faces(INFO, (), np.zeros((0, 48, 48), np.uint8)),
    wire.Result(INFO, ((1, 2, 3, 4),), ((0.1, 0.0, 0.2, 0.5, 0.1, 0.05, 0.05),)),
    wire.Result(INFO, (), ()),
    wire.EndOfStream("office-woman", 464),
    wire.StreamStart("office-woman", 464),
    wire.StreamStart("camera0"),
    wire.Control("stop"),
    wire.Control("stop", "capture"),
    wire.Control(wire.REWIND, "", 3),
    wire.Result(wire.FrameInfo("clip", 7, 0.25, 1.5, 2), ((1, 2, 3, 4),), ((0.5,) * 7,), (1,)),
    wire.Status("detect", 1, 4242, {"frames_in": 3, "latency_p95_ms": 12.5}),
    wire.StatusRequest(),
    wire.StatusReport("gpu-box", 77, "running", 12.5, ()),
    wire.StatusReport("gpu-box", 77, "draining", 3.0, (REPORTED_WORKER, REPORTED_WORKER)),
    wire.StatusReport("gpu-box", 77, "running", 3.0, (), {"malformed_heartbeats": 2, "malformed_requests": 1}),
    wire.Ready("detect/0@worker-7:4242", 2, True),
    wire.Ready("detect/1@worker-7:4243", 0, False),
    wire.Ready("detect/2@worker-7:4244", 1, True, spare=True),
])
def test_round_trip_keeps_every_field(message):
    decoded = wire.decode([bytes(frame) for frame in wire.encode(message)])
    assert type(decoded) is type(message)
    for name in message.__dataclass_fields__:
        original, copy = getattr(message, name), getattr(decoded, name)
        if isinstance(original, np.ndarray):
            np.testing.assert_array_equal(copy, original)
        else:
            assert copy == original


def test_pixels_travel_as_their_own_frame_and_decode_read_only():
    frames = wire.encode(frame_message((480, 640, 3)))
    assert len(frames) == 2 and len(frames[1]) == 480 * 640 * 3
    decoded = wire.decode(frames)
    assert not decoded.pixels.flags.writeable


def test_wrong_schema_version_is_refused():
    header = header_of(frame_message()) | {"v": wire.SCHEMA_VERSION + 1}
    with pytest.raises(ValueError, match="schema version"):
        wire.decode(rebuild(header, bytes(72)))


@pytest.mark.parametrize("dtype", ["float64", "int32", "object", "<U8", 7, None])
def test_dtype_outside_the_allow_list_is_refused(dtype):
    header = header_of(frame_message()) | {"dtype": dtype}
    with pytest.raises(ValueError, match="dtype"):
        wire.decode(rebuild(header, bytes(72)))


@pytest.mark.parametrize("shape", [[-4, 6, 3], [0, 6, 3], [4, 6, 2], [100000, 100000, 3], [4, 6, 3, 1],
                                   [2**40, 1, 1], "4x6", [4.0, 6, 3], [True, 6, 3]])
def test_negative_zero_odd_or_huge_shapes_are_refused(shape):
    header = header_of(frame_message()) | {"shape": shape}
    with pytest.raises(ValueError):
        wire.decode(rebuild(header, bytes(72)))


@pytest.mark.parametrize("size", [0, 71, 73, 72 * 2])
def test_byte_count_must_match_the_shape_exactly(size):
    header = header_of(frame_message())
    with pytest.raises(ValueError, match="bytes"):
        wire.decode(rebuild(header, bytes(size)))


def test_faces_with_more_boxes_than_crops_are_refused():
    message = wire.Faces(INFO, ((1, 2, 48, 50),), np.zeros((1, 48, 48), np.uint8))
    header = header_of(message) | {"boxes": [[1, 2, 48, 50], [3, 4, 5, 6]]}
    with pytest.raises(ValueError, match="boxes"):
        wire.decode(rebuild(header, bytes(48 * 48)))


@pytest.mark.parametrize("scores", [[[0.1] * 6], [[float("nan")] * 7], [["a"] * 7], "x", [[0.1] * 7, [0.1] * 7]])
def test_bad_score_rows_are_refused(scores):
    header = header_of(wire.Result(INFO, ((1, 2, 3, 4),), ((0.1,) * 7,))) | {"scores": scores}
    with pytest.raises(ValueError):
        wire.decode(rebuild(header))


@pytest.mark.parametrize("change", [{"kind": "pickle"}, {"stream": ""}, {"stream": "x" * 500}, {"frame": -1},
                                    {"frame": "3"}, {"captured_s": float("inf")}, {"position_s": None}])
def test_bad_header_fields_are_refused(change):
    header = header_of(frame_message()) | change
    with pytest.raises(ValueError):
        wire.decode(rebuild(header, bytes(72)))


@pytest.mark.parametrize("frames", [[], [b""], [b"\xc1"], [b"\x93\x01\x02\x03"], [b"a", b"b", b"c"],
                                    [msgpack.packb([1, 2, 3])], [msgpack.packb({1: 2})], [b"\xff" * 70000]])
def test_garbage_frames_are_refused(frames):
    with pytest.raises(ValueError):
        wire.decode(frames)


def test_a_frame_message_without_pixels_and_a_result_with_pixels_are_refused():
    with pytest.raises(ValueError, match="pixel frame"):
        wire.decode(wire.encode(frame_message())[:1])
    with pytest.raises(ValueError, match="no pixel frame"):
        wire.decode(wire.encode(wire.Result(INFO, (), ())) + [b"extra"])


def test_random_bytes_never_raise_anything_but_value_error():
    generator, seed = fuzz_generator(1)
    for index in range(2000):
        count = int(generator.integers(1, 3))
        frames = [generator.bytes(int(generator.integers(0, 200))) for _ in range(count)]
        decode_hostile(frames, seed, index)


def test_mutated_valid_headers_never_raise_anything_but_value_error():
    generator, seed = fuzz_generator(2)
    valid = wire.encode(wire.Faces(INFO, ((1, 2, 48, 50),), np.zeros((1, 48, 48), np.uint8)))
    header = bytearray(valid[0])
    for index in range(2000):
        mutated = bytearray(header)
        for _ in range(int(generator.integers(1, 4))):
            mutated[int(generator.integers(0, len(mutated)))] = int(generator.integers(0, 256))
        decode_hostile([bytes(mutated), bytes(valid[1])], seed, index)


def status_report_header(**worker_change) -> dict:
    header = header_of(wire.StatusReport("gpu-box", 77, "running", 1.0, (REPORTED_WORKER,)))
    header["workers"][0].update(worker_change)
    return header


@pytest.mark.parametrize("change", [{"alive": 1}, {"state": "sleeping"}, {"restarts": -1}, {"rate_in_fps": -2.0},
                                    {"rate_out_fps": float("nan")}, {"counters": {"x": "many"}},
                                    {"counters": {f"c{i}": i for i in range(65)}}, {"stage": ""}, {"pid": "1"}])
def test_bad_worker_reports_are_refused(change):
    with pytest.raises(ValueError):
        wire.decode(rebuild(status_report_header(**change)))


@pytest.mark.parametrize("change", [{"workers": "all"}, {"workers": [1]}, {"phase": "asleep"}, {"uptime_s": -1.0},
                                    {"host": ""}, {"workers": [header_of(wire.Status("x", 0, 1))] * 65},
                                    {"counters": {"malformed_heartbeats": "2"}}, {"counters": [1]}])
def test_bad_status_reports_are_refused(change):
    with pytest.raises(ValueError):
        wire.decode(rebuild(status_report_header() | change))


def test_a_status_report_without_the_supervisor_counters_is_one_with_none():
    header = status_report_header()
    del header["counters"]  # as a supervisor from before they were reported sends it
    assert wire.decode(rebuild(header)).counters == {}


def test_a_status_request_carries_nothing_else():
    with pytest.raises(ValueError, match="carries no fields"):
        wire.decode(rebuild(header_of(wire.StatusRequest()) | {"command": "stop"}))


@pytest.mark.parametrize("change", [{"worker": ""}, {"worker": "x" * 500}, {"worker": 7}, {"load": -1},
                                    {"load": MAX_LEASE_LOAD + 1}, {"load": True}, {"load": 1.5},
                                    {"tracking": 1}, {"tracking": None}, {"spare": 0}, {"spare": "yes"}])
def test_bad_ready_messages_are_refused(change):
    with pytest.raises(ValueError):
        wire.decode(rebuild(header_of(wire.Ready("detect/0@host:1", 1, True)) | change))

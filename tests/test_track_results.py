"""Track ids from detect to the results file: the wire, the stream-to-worker split, and
per-track smoothing of the emotion scores."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from fakeblock.common import wire
from fakeblock.common.config import DetectConfig
from fakeblock.common.endpoints import ipc_endpoints
from fakeblock.common.preprocess import EMOTIONS
from fakeblock.detect.stage import frame_sources, spare_sources
from fakeblock.display.core import result_record
from fakeblock.display.smoothing import TrackSmoother

HAPPY = tuple(1.0 if name == "happy" else 0.0 for name in EMOTIONS)
SAD = tuple(1.0 if name == "sad" else 0.0 for name in EMOTIONS)


def info(frame_number: int, stream: str = "clip") -> wire.FrameInfo:
    return wire.FrameInfo(stream, frame_number, frame_number / 30, 0.0)


def result(frame_number: int, scores, tracks=(4,), stream: str = "clip") -> wire.Result:
    """One frame's result with a face per track id, all with ``scores``."""
    return wire.Result(info(frame_number, stream), ((10, 10, 50, 50),) * len(tracks), (tuple(scores),) * len(tracks),
                       tuple(tracks))


def test_track_ids_cross_the_wire_and_bad_ones_are_refused():
    faces = wire.Faces(info(3), ((1, 2, 30, 30), (50, 2, 30, 30)), np.zeros((2, 48, 48), np.uint8), (7, 9))
    assert wire.decode(wire.encode(faces)).tracks == (7, 9)
    message = wire.Result(info(3), ((1, 2, 30, 30),), (HAPPY,), (7,))
    assert wire.decode(wire.encode(message)) == message
    assert wire.decode(wire.encode(wire.Result(info(3), ((1, 2, 30, 30),), (HAPPY,)))).tracks == ()
    for bad in ([0], [True], ["7"], [7, 8], [2**60]):
        frames = wire.encode(message)
        header = msgpack.unpackb(frames[0]) | {"tracks": bad}
        with pytest.raises(ValueError, match="tracks"):
            wire.decode([msgpack.packb(header)])


def test_each_stream_goes_to_one_tracking_worker_and_every_stream_to_some_worker(tmp_path):
    endpoints = ipc_endpoints(tmp_path)
    endpoints = type(endpoints)(**{**endpoints.as_dict(), "extra_frames": ("ipc://b", "ipc://c")})
    every = endpoints.all_frames()
    tracked = DetectConfig(worker_count=2)
    assert frame_sources(tracked, endpoints, 0) == (every[0], every[2])
    assert frame_sources(tracked, endpoints, 1) == (every[1],)
    # A second host's workers are numbered after the first host's.
    assert frame_sources(DetectConfig(worker_count=4, first_worker=2), endpoints, 0) == (every[2],)
    assert frame_sources(DetectConfig(worker_count=4, first_worker=2), endpoints, 1) == ()
    assert frame_sources(DetectConfig(tracking=False, worker_count=2), endpoints, 1) == every
    # With tracking each worker stands by for the streams of the others, as a spare.
    assert spare_sources(tracked, endpoints, 0) == (every[1],)
    assert spare_sources(tracked, endpoints, 1) == (every[0], every[2])
    assert spare_sources(DetectConfig(tracking=False, worker_count=2), endpoints, 1) == ()


def test_smoothing_averages_a_track_over_frames_and_keeps_the_raw_scores():
    smoother = TrackSmoother(time_constant_frames=4)
    for number in range(20):
        smoothed = smoother.smooth(result(number, HAPPY))
    assert smoothed.scores[0] == pytest.approx(HAPPY)
    # One odd frame does not flip the label, several in a row do.
    odd = smoother.smooth(result(20, SAD))
    assert EMOTIONS[int(np.argmax(odd.scores[0]))] == "happy"
    for number in range(21, 30):
        later = smoother.smooth(result(number, SAD))
    assert EMOTIONS[int(np.argmax(later.scores[0]))] == "sad"
    record = result_record(odd, result(20, SAD))
    assert record["faces"][0]["track"] == 4 and record["faces"][0]["emotion"] == "happy"
    assert record["faces"][0]["scores_raw"]["sad"] == 1.0


def test_smoothing_keeps_tracks_and_streams_apart_and_forgets_old_tracks():
    smoother = TrackSmoother(time_constant_frames=4, max_tracks=2)
    smoother.smooth(result(0, HAPPY, tracks=(1,)))
    fresh = smoother.smooth(result(1, SAD, tracks=(2,)))
    assert fresh.scores[0] == pytest.approx(SAD)  # a new track starts from its own scores
    other_stream = smoother.smooth(result(1, SAD, tracks=(1,), stream="door"))
    assert other_stream.scores[0] == pytest.approx(SAD)
    assert len(smoother._tracks) == 2


def test_untracked_results_pass_unchanged_and_name_no_track():
    plain = wire.Result(info(0), ((1, 1, 20, 20),), (SAD,))
    assert TrackSmoother().smooth(plain) is plain
    face = result_record(plain)["faces"][0]
    assert "track" not in face and "scores_raw" not in face and face["emotion"] == "sad"

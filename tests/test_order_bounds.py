"""No single message steers the display's ordering: forged far-future frames, floods of
streams and ends that contradict what was written are refused and counted."""

from __future__ import annotations

from fakeblock.common import wire
from fakeblock.display.order import MAX_REORDER_FRAMES, MAX_STREAMS, MAX_UNANNOUNCED_PENDING, FrameOrderer


def result(number: int, stream: str = "clip") -> wire.Result:
    return wire.Result(wire.FrameInfo(stream, number, number / 30, 0.0), (), ())


def test_a_far_future_result_cannot_stop_a_live_stream():
    orderer = FrameOrderer(live=True, needs_frames=False, max_wait_s=1.0, announced=("clip",))
    assert not orderer.add_result(result(1_000_000), 0.0)
    released = []
    for number in range(50):
        orderer.add_result(result(number), number * 0.03)
        released += orderer.release(number * 0.03 + 2.0)
    assert [joined.frame_number for joined in released] == list(range(50))
    assert orderer.refused == 1


def test_a_flood_of_future_results_and_new_streams_is_bounded():
    orderer = FrameOrderer(live=False, needs_frames=False, announced=("clip",))
    for number in range(1, 3 * MAX_REORDER_FRAMES):
        orderer.add_result(result(number), 0.0)
    for index in range(3 * MAX_STREAMS):
        orderer.add_result(result(0, f"forged-{index}"), 0.0)
    assert orderer.pending <= MAX_REORDER_FRAMES + MAX_STREAMS
    assert len(orderer.streams) == MAX_STREAMS
    # Frames 4096 and up are refused, and every stream past the 64th (one is "clip" itself).
    assert orderer.refused == 2 * MAX_REORDER_FRAMES + 2 * MAX_STREAMS + 1


def test_an_end_of_stream_below_frames_already_written_is_refused():
    orderer = FrameOrderer(live=False, needs_frames=False, announced=("clip",))
    for number in range(200):
        orderer.add_result(result(number), 0.0)
    assert len(orderer.release(0.0)) == 200
    orderer.end_stream("clip", 50, 0.0)  # forged: 200 frames exist
    assert orderer.refused == 1 and not orderer.finished()
    orderer.add_result(result(200), 0.0)
    orderer.end_stream("clip", 201, 0.0)  # the real end
    assert [joined.frame_number for joined in orderer.release(0.0)] == [200]
    assert orderer.finished()


def test_results_for_a_stream_no_capture_ends_cannot_keep_a_replay_waiting():
    orderer = FrameOrderer(live=False, needs_frames=False, announced=("clip",))
    orderer.add_result(result(0, "ghost"), 0.0)
    for number in range(3):
        orderer.add_result(result(number), 0.0)
    orderer.release(0.0)
    assert not orderer.finished()
    orderer.end_stream("clip", 3, 0.0)
    orderer.release(0.0)
    assert orderer.finished()


def test_a_replay_of_two_streams_waits_for_both_to_end():
    orderer = FrameOrderer(live=False, needs_frames=False, expected_streams=2, announced=("door", "hall"))
    orderer.add_result(result(0, "door"), 0.0)
    orderer.end_stream("door", 1, 0.0)
    orderer.release(0.0)
    assert not orderer.finished()
    orderer.add_result(result(0, "hall"), 0.0)
    orderer.end_stream("hall", 1, 0.0)
    orderer.release(0.0)
    assert orderer.finished()


def test_only_announced_streams_are_released_and_an_unannounced_end_is_refused():
    orderer = FrameOrderer(live=False, needs_frames=False)
    for number in range(3):
        orderer.add_result(result(number), 0.0)  # results may come before the announcement
    assert orderer.release(0.0) == []
    assert not orderer.end_stream("clip", 3, 0.0) and orderer.refused == 1  # an end never precedes its start
    orderer.announce("clip", 3)
    assert [joined.frame_number for joined in orderer.release(0.0)] == [0, 1, 2]
    assert orderer.end_stream("clip", 3, 0.0) and orderer.finished()


def test_results_for_a_stream_nobody_announced_are_held_boundedly_and_never_written():
    orderer = FrameOrderer(live=False, needs_frames=False, announced=("clip",))
    for number in range(2 * MAX_UNANNOUNCED_PENDING):
        orderer.add_result(result(number, "ghost"), 0.0)
    assert orderer.pending == MAX_UNANNOUNCED_PENDING and orderer.refused == MAX_UNANNOUNCED_PENDING
    orderer.add_result(result(0), 0.0)
    orderer.end_stream("clip", 1, 0.0)
    assert [(joined.stream, joined.frame_number) for joined in orderer.release(0.0)] == [("clip", 0)]
    assert orderer.finished()
    assert orderer.flush() == [] and orderer.refused == 2 * MAX_UNANNOUNCED_PENDING


def test_a_forged_stream_that_ends_early_cannot_cut_a_real_one_short():
    orderer = FrameOrderer(live=False, needs_frames=False, announced=("clip",))
    orderer.add_result(result(0), 0.0)
    orderer.announce("forged")
    orderer.add_result(result(0, "forged"), 0.0)
    orderer.end_stream("forged", 1, 0.0)
    orderer.release(0.0)
    assert not orderer.finished(), "the real stream has not ended"
    orderer.end_stream("clip", 1, 0.0)
    orderer.release(0.0)
    assert orderer.finished()

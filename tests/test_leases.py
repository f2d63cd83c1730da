"""The capture's lease policy (capture/leases.py), without sockets: who gets a stream's frames.

And the ROUTER end around it (capture/lease_link.py) against real DEALER peers over
``inproc://``: frames go to the holder alone, a vanished holder's lease moves at once,
and hostile messages are dropped and counted.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from fakeblock.capture.lease_link import LeaseLink
from fakeblock.capture.leases import MAX_PEERS, Leases, rendezvous_score
from fakeblock.common import wire
from fakeblock.common.counters import LEASES, MALFORMED, PEERS, PEERS_REFUSED, UNEXPECTED
from fakeblock.common.runtime import StageRuntime

TIMEOUT_S = 2.0
RECEIVE_TIMEOUT_MS = 5000
READY = wire.Ready("detect/0@host:1")


class Clock:
    def __init__(self):
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def leases(stream: str = "door", **options) -> tuple[Leases, Clock]:
    clock = Clock()
    return Leases(stream, TIMEOUT_S, clock=clock, **options), clock


def test_nobody_ready_means_no_target_and_the_first_ready_peer_gets_the_lease():
    table, _clock = leases()
    assert table.targets() == () and table.holder is None
    table.heard(b"a", READY)
    assert table.targets() == (b"a",) and table.holder == b"a" and table.granted == 1


def test_a_peer_joining_later_never_takes_a_live_lease():
    table, clock = leases(score=lambda stream, peer: {b"a": 1, b"b": 99}[peer])
    table.heard(b"a", READY)
    assert table.targets() == (b"a",)
    for _ in range(20):  # b would win a fresh choice, and says ready all along
        clock.now_s += 0.5
        table.heard(b"a", READY)
        table.heard(b"b", READY)
        assert table.targets() == (b"a",)
    assert table.granted == 1


def test_a_silent_holder_loses_the_lease_after_the_timeout_and_the_other_peer_gets_it():
    table, clock = leases()
    table.heard(b"a", READY)
    table.heard(b"b", READY)
    holder = table.targets()[0]
    other = b"b" if holder == b"a" else b"a"
    clock.now_s += TIMEOUT_S  # not yet: silent for exactly the timeout
    table.heard(other, READY)
    assert table.targets() == (holder,)
    clock.now_s += 0.1
    assert table.targets() == (other,) and table.granted == 2
    table.heard(holder, READY)  # back, and ready again: the stream stays where it now is
    assert table.targets() == (other,) and table.live_count() == 2


def test_an_unreachable_holder_loses_the_lease_at_once():
    table, _clock = leases()
    table.heard(b"a", READY)
    table.heard(b"b", READY)
    holder = table.targets()[0]
    table.lost(holder)
    assert table.targets() == ((b"b",) if holder == b"a" else (b"a",)) and table.live_count() == 1
    table.lost(b"never-seen")  # harmless
    assert table.live_count() == 1


def test_the_least_loaded_peer_wins_and_rendezvous_hashing_breaks_ties():
    table, _clock = leases()
    table.heard(b"busy", wire.Ready("detect/0@a:1", load=3))
    table.heard(b"idle", wire.Ready("detect/0@b:1", load=0))
    assert table.targets() == (b"idle",)
    # Equal loads: the highest rendezvous score of (stream, peer) wins, so streams pick independently.
    peers = [bytes([0, 0, 0, 0, number]) for number in range(8)]
    winners = set()
    for stream in ("door", "hall", "lift", "yard", "gate", "roof"):
        table, _clock = leases(stream)
        for peer in reversed(peers):
            table.heard(peer, READY)
        winner = table.targets()[0]
        assert winner == max(peers, key=lambda peer, stream=stream: rendezvous_score(stream, peer))
        winners.add(winner)
    assert len(winners) > 1, "different streams spread over the peers"


def test_equal_scores_fall_back_to_the_smallest_routing_id():
    table, _clock = leases(score=lambda stream, peer: 0)
    for peer in (b"c", b"a", b"b"):
        table.heard(peer, READY)
    assert table.targets() == (b"a",)


def test_two_streams_over_two_peers_take_one_each_once_loads_are_reported():
    door, clock = leases("door")
    hall = Leases("hall", TIMEOUT_S, clock=clock)
    for table in (door, hall):
        table.heard(b"x", READY)
        table.heard(b"y", READY)
    door_holder = door.targets()[0]
    # The holder's next ready message says it holds one stream now.
    hall.heard(door_holder, wire.Ready("detect/0@h:1", load=1))
    assert hall.targets()[0] != door_holder


def test_without_tracking_peers_take_frames_in_turn_and_no_lease_is_given():
    table, _clock = leases()
    plain = wire.Ready("detect/0@h:1", tracking=False)
    for peer in (b"a", b"b", b"c"):
        table.heard(peer, plain)
    firsts = [table.targets()[0] for _ in range(6)]
    assert sorted(firsts) == [b"a", b"a", b"b", b"b", b"c", b"c"] and table.holder is None
    assert all(len(table.targets()) == 3 for _ in range(3))  # the others, should the first be full
    table.heard(b"t", READY)  # a tracking peer: the stream is leased to it alone
    assert table.targets() == (b"t",)


def test_the_peer_table_is_bounded_and_a_flood_cannot_push_live_peers_out():
    table, clock = leases()
    table.heard(b"real", READY)
    assert table.targets() == (b"real",)
    accepted = [table.heard(f"forged-{number}".encode(), READY) for number in range(10 * MAX_PEERS)]
    assert sum(accepted) == MAX_PEERS - 1 and len(table.peers) == MAX_PEERS
    assert table.targets() == (b"real",)
    clock.now_s += TIMEOUT_S + 1  # the flood goes quiet; the real peer does not
    table.heard(b"real", READY)
    assert table.heard(b"newcomer", READY) and table.live_count() == 2
    assert table.targets() == (b"real",)


# --- the ROUTER end, against DEALER peers over inproc:// ------------------------------------

@pytest.fixture
def link(stage_endpoints):
    """A LeaseLink on a runtime of its own (no supervisor), and a maker of the test's DEALER peers."""
    endpoints = stage_endpoints
    runtime = StageRuntime("capture", 0, endpoints, handle_signals=False)
    made = LeaseLink(runtime, endpoints.frames, 4, 0, Leases("door", TIMEOUT_S))
    peers: list[zmq.Socket] = []

    def peer(receive_hwm: int | None = None) -> zmq.Socket:
        socket = runtime.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVTIMEO, RECEIVE_TIMEOUT_MS)
        if receive_hwm is not None:  # before connecting: a later change reaches the pipe asynchronously
            socket.setsockopt(zmq.RCVHWM, receive_hwm)
        socket.connect(endpoints.frames)
        peers.append(socket)
        return socket

    yield made, peer
    for socket in peers:
        socket.close()
    runtime.close()


def frame(number: int) -> wire.Frame:
    return wire.Frame(wire.FrameInfo("door", number, number / 30, 0.0), np.zeros((4, 6, 3), np.uint8))


def say_ready(socket: zmq.Socket, load: int = 0) -> None:
    socket.send_multipart(wire.encode(wire.Ready("detect/0@test:1", load)))


def wait_for_peers(made: LeaseLink, count: int) -> None:
    deadline_s = time.monotonic() + RECEIVE_TIMEOUT_MS / 1000
    while made.leases.live_count() < count:
        assert time.monotonic() < deadline_s, f"{count} peers never became ready"
        made.read_ready()
        time.sleep(0.01)


def test_every_frame_goes_to_the_holder_alone_and_a_vanished_holder_s_lease_moves_at_once(link):
    made, peer = link
    first, second = peer(), peer()
    say_ready(first)
    wait_for_peers(made, 1)
    assert made.send(frame(0), block=False)  # leased to the one ready peer
    say_ready(second, load=0)
    wait_for_peers(made, 2)
    assert all(made.send(frame(number), block=False) for number in (1, 2))
    assert [wire.decode(first.recv_multipart()).info.frame_number for _ in range(3)] == [0, 1, 2]
    assert not second.poll(200), "the other peer gets nothing while the holder lives"
    first.close()  # the holder vanishes: the next send finds it unreachable and leases again
    deadline_s = time.monotonic() + RECEIVE_TIMEOUT_MS / 1000
    while not second.poll(0):
        assert time.monotonic() < deadline_s, "the lease never moved"
        made.send(frame(3), block=False)
        time.sleep(0.01)
    assert wire.decode(second.recv_multipart()).info.frame_number == 3
    assert made.runtime.counters[LEASES] == 2


def test_a_lossless_send_waits_for_room_at_the_holder_and_gives_up_on_a_stop(link):
    made, peer = link
    reader = peer(receive_hwm=1)
    say_ready(reader)
    wait_for_peers(made, 1)
    sent = 0
    # Fill the holder until it refuses, again after a pause, until a pause makes no room:
    # the transport's own buffers can take in a few more frames after the first refusal.
    while True:
        sent_before = sent
        while made.send(frame(sent), block=False):
            sent += 1
            assert sent < 1000, "a full peer never refused a frame"
        if sent == sent_before and sent > 0:
            break
        time.sleep(0.1)
    made.runtime.stop_requested = True
    assert not made.send(frame(sent), block=True), "a stop ends the wait"
    assert [wire.decode(reader.recv_multipart()).info.frame_number for _ in range(sent)] == list(range(sent))


def test_hostile_messages_are_dropped_and_counted_and_the_honest_peer_still_gets_its_frames(link):
    made, peer = link
    honest, hostile = peer(), peer()
    hostile.send_multipart([b"\xc1"])  # not msgpack
    hostile.send_multipart(wire.encode(wire.Control("stop")))  # well formed, but not for this link
    hostile.send_multipart([b"a", b"b", b"c"])  # too many parts
    hostile.send_multipart([bytes(4096)])  # over the ready message's size: libzmq drops the connection
    say_ready(honest)
    wait_for_peers(made, 1)
    deadline_s = time.monotonic() + RECEIVE_TIMEOUT_MS / 1000
    while made.runtime.counters[MALFORMED] < 2 or made.runtime.counters.get(UNEXPECTED, 0) < 1:
        assert time.monotonic() < deadline_s, f"hostile messages not all counted: {made.runtime.counters}"
        made.read_ready()
        time.sleep(0.01)
    assert made.runtime.counters[PEERS] == 1 and made.runtime.counters.get(PEERS_REFUSED, 0) == 0
    assert made.send(frame(0), block=False)
    assert wire.decode(honest.recv_multipart()).info.frame_number == 0


def test_a_spare_gets_a_stream_only_while_no_other_tracking_worker_is_ready():
    table, clock = leases()
    spare = wire.Ready("detect/1@host:2", load=0, spare=True)
    table.heard(b"spare", spare)
    table.heard(b"own", wire.Ready("detect/0@host:1", load=3))  # busier, but the site gives it this stream
    assert table.targets() == (b"own",)
    clock.now_s += TIMEOUT_S / 2
    table.heard(b"spare", spare)
    clock.now_s += TIMEOUT_S / 2 + 0.1  # the holder froze: silent past the live lease timeout
    table.heard(b"spare", spare)
    assert table.targets() == (b"spare",) and table.granted == 2
    table.heard(b"own", wire.Ready("detect/0@host:1"))  # thawed: the live lease stays where it is
    assert table.targets() == (b"spare",)


def test_at_the_start_a_lone_spare_gets_the_stream_only_after_the_lease_timeout():
    table, clock = leases()
    spare = wire.Ready("detect/1@host:2", spare=True)
    table.heard(b"spare", spare)
    assert table.targets() == (), "the stream's own worker gets its time to say it is ready"
    clock.now_s += TIMEOUT_S + 0.1
    table.heard(b"spare", spare)
    assert table.targets() == (b"spare",) and table.granted == 1

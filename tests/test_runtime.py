"""The stage runtime's message helpers: one decoded message at a time, and raw forwarding."""

from __future__ import annotations

import zmq

from fakeblock.common import wire
from fakeblock.common.endpoints import ipc_endpoints
from fakeblock.common.runtime import StageRuntime, receive_message

STOP = wire.Control(wire.STOP)


def linked_pair(context: zmq.Context, name: str, hwm: int = 10) -> tuple[zmq.Socket, zmq.Socket]:
    sender, receiver = context.socket(zmq.PUSH), context.socket(zmq.PULL)
    for socket in (sender, receiver):
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, hwm)
        socket.setsockopt(zmq.RCVHWM, hwm)
    receiver.bind(f"inproc://{name}")
    sender.connect(f"inproc://{name}")
    return sender, receiver


def test_receive_message_decodes_one_message_and_hands_malformed_ones_to_the_callback():
    context = zmq.Context()
    sender, receiver = linked_pair(context, "receive")
    errors = []
    try:
        assert receive_message(receiver, errors.append) is None, "nothing is waiting"
        sender.send_multipart([b"not msgpack at all"])
        sender.send_multipart(wire.encode(STOP))
        assert receiver.poll(1000)
        assert receive_message(receiver, errors.append) is None
        assert len(errors) == 1 and isinstance(errors[0], ValueError)
        assert receiver.poll(1000) and receive_message(receiver, errors.append) == STOP
    finally:
        sender.close()
        receiver.close()
        context.term()


def test_forward_sends_raw_frames_on_and_gives_up_only_on_a_stop(tmp_path):
    runtime = StageRuntime("queue", 0, ipc_endpoints(tmp_path), handle_signals=False)
    result = wire.Result(wire.FrameInfo("door", 3, 0.1, 1.0), (), ())
    sender, receiver = linked_pair(runtime.context, "in")
    outgoing, incoming = linked_pair(runtime.context, "on", hwm=1)
    try:
        sender.send_multipart(wire.encode(result))
        assert receiver.poll(1000)
        frames = receiver.recv_multipart(copy=False)
        assert runtime.forward(outgoing, frames)
        assert incoming.poll(1000) and wire.decode(incoming.recv_multipart()) == result
        while runtime.send(outgoing, result, block=False):
            pass  # until no reader has room
        runtime.stop_requested = True
        assert not runtime.forward(outgoing, frames)
    finally:
        for socket in (sender, receiver, outgoing, incoming):
            socket.close()
        runtime.close()


def test_a_message_over_the_part_or_byte_limit_is_refused_whole_and_the_next_one_is_read(monkeypatch):
    context = zmq.Context()
    sender, receiver = linked_pair(context, "bounded")
    errors = []
    try:
        sender.send_multipart(wire.encode(STOP) + [b"x"] * 63)  # 64 parts
        monkeypatch.setattr(wire, "MAX_MESSAGE_BYTES", 1000)
        sender.send_multipart([wire.encode(STOP)[0], b"y" * 2000])  # two parts, 2 kB in all
        sender.send_multipart(wire.encode(STOP))
        assert receiver.poll(1000)
        assert receive_message(receiver, errors.append) is None
        assert receive_message(receiver, errors.append) is None
        assert [("more than 2 parts" in str(error)) for error in errors] == [True, True]
        assert receive_message(receiver, errors.append) == STOP  # nothing of the refused ones is left over
        assert len(errors) == 2 and not receiver.poll(0)
    finally:
        sender.close()
        receiver.close()
        context.term()


def test_the_queue_forwards_faces_and_drops_everything_else(tmp_path):
    import multiprocessing
    import time

    import numpy as np

    from fakeblock.classify.queue import run_queue
    from fakeblock.common.model_io import FACE_SIZE_PX

    endpoints = ipc_endpoints(tmp_path)
    context = zmq.Context()
    sockets = {name: context.socket(kind) for name, kind in
               (("status", zmq.PULL), ("control", zmq.PUB), ("faces_in", zmq.PUSH), ("faces_out", zmq.PULL))}
    for name, socket in sockets.items():
        socket.setsockopt(zmq.LINGER, 0)
        (socket.bind if name in ("status", "control") else socket.connect)(getattr(endpoints, name))
    queue = multiprocessing.get_context("spawn").Process(target=run_queue, args=(None, endpoints))
    queue.start()
    faces = wire.Faces(wire.FrameInfo("door", 1, 0.1, 1.0), (), np.zeros((0, FACE_SIZE_PX, FACE_SIZE_PX), np.uint8))
    try:
        for message in ([b"\x81\xa1v\x02"], wire.encode(STOP) + [b"x", b"y"], wire.encode(STOP), wire.encode(faces)):
            sockets["faces_in"].send_multipart(message)
        assert sockets["faces_out"].poll(10_000), "the queue forwarded nothing"
        forwarded = wire.decode(sockets["faces_out"].recv_multipart())
        assert isinstance(forwarded, wire.Faces) and forwarded.info == faces.info
        assert not sockets["faces_out"].poll(300), "the queue forwarded something that is not Faces"
        counters: dict = {}
        deadline_s = time.monotonic() + 10.0
        while not (counters.get("malformed") == 2 and counters.get("unexpected") == 1):
            assert queue.is_alive(), f"the queue exited with {queue.exitcode}"
            assert time.monotonic() < deadline_s, f"the queue never counted the bad messages: {counters}"
            if sockets["status"].poll(100):
                counters.update(wire.decode(sockets["status"].recv_multipart()).counters)
    finally:
        sockets["control"].send_multipart(wire.encode(STOP))
        queue.join(10)
        if queue.is_alive():
            queue.kill()
        for socket in sockets.values():
            socket.close()
        context.term()
    assert queue.exitcode == 0

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

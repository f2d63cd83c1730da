"""A client that tries to read a running site: run as ``python -m tests.intruder`` inside a test's namespace.

It connects with the key pair it is given (``--keys DIR --client NAME``) and the site's
real server public key (``--server-key FILE``): an intruder may well know that one, it is
public.  It pulls from every ``--pull`` endpoint (where faces would arrive), says it is a
ready detect worker to every ``--ready`` endpoint (a capture's frames, leased to such a
worker) and reads what comes back, sends a status request to every ``--status``
endpoint, waits ``--wait-s`` seconds, and prints one JSON line: how many messages and
answers it got.  Every socket has a bounded
linger, every wait a timeout and the context's end a deadline, so it always ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import zmq

from fakeblock.common import wire
from fakeblock.common.security.keys import load_key_pair, load_public_key
from tests.harness import terminate_context

LINGER_MS = 0
POLL_STEP_MS = 100


def _secure(socket: zmq.Socket, public_key: bytes, secret_key: bytes, server_key: bytes) -> zmq.Socket:
    socket.curve_publickey, socket.curve_secretkey, socket.curve_serverkey = public_key, secret_key, server_key
    socket.linger = LINGER_MS
    return socket


def _open_sockets(context: zmq.Context, arguments) -> dict[zmq.Socket, str]:
    """Socket -> what it counts ("pulled" or "answers"), every one connected and a request sent on each REQ."""
    public_key, secret_key = load_key_pair(arguments.keys, arguments.client)
    server_key = load_public_key(arguments.server_keys, "server")
    sockets = {}
    for endpoint in arguments.pull:
        socket = _secure(context.socket(zmq.PULL), public_key, secret_key, server_key)
        socket.connect(endpoint)
        sockets[socket] = "pulled"
    for endpoint in arguments.ready:
        socket = _secure(context.socket(zmq.DEALER), public_key, secret_key, server_key)
        socket.connect(endpoint)
        # Idle, so a capture whose holder is gone would lease its stream here.
        socket.send_multipart(wire.encode(wire.Ready("detect/0@intruder:1", 0, True)))
        sockets[socket] = "pulled"
    for endpoint in arguments.status:
        socket = _secure(context.socket(zmq.REQ), public_key, secret_key, server_key)
        socket.connect(endpoint)
        socket.send_multipart(wire.encode(wire.StatusRequest()))
        sockets[socket] = "answers"
    return sockets


def count_received(arguments) -> dict[str, int]:
    """How many messages the pull sockets and the status requests got within ``wait_s``."""
    context = zmq.Context()
    counts = {"pulled": 0, "answers": 0}
    sockets = _open_sockets(context, arguments)
    try:
        poller = zmq.Poller()
        for socket in sockets:
            poller.register(socket, zmq.POLLIN)
        deadline_s = time.monotonic() + arguments.wait_s
        while time.monotonic() < deadline_s:
            for socket, _event in poller.poll(POLL_STEP_MS):
                socket.recv_multipart(zmq.NOBLOCK)
                counts[sockets[socket]] += 1
                if socket.type == zmq.REQ:
                    poller.unregister(socket)  # one answer per request
    finally:
        for socket in sockets:
            socket.close(linger=LINGER_MS)
        terminate_context(context)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", required=True, help="the folder of the key pair to connect with")
    parser.add_argument("--client", default="client", help="the name of that key pair")
    parser.add_argument("--server-keys", required=True, help="the folder holding the site's server.key")
    parser.add_argument("--pull", action="append", default=[], help="an endpoint to pull messages from")
    parser.add_argument("--ready", action="append", default=[], help="a capture's frames endpoint to read as a "
                        "detect worker would")
    parser.add_argument("--status", action="append", default=[], help="a status service to ask")
    parser.add_argument("--wait-s", type=float, default=3.0)
    arguments = parser.parse_args(argv)
    sys.stdout.write(json.dumps(count_received(arguments)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

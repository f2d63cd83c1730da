"""Another local user's try at a pipeline on this machine: ``python tests/local_intruder.py`` as that user.

Only the standard library and pyzmq, so it runs from a path any user can read without
importing fakeblock (the test gives it the forged messages already encoded).  For every
``--endpoint`` (``ipc://PATH`` or ``tcp://HOST:PORT``) it first tries a plain connect and
records what the kernel said: ``connected``, or the errno name (``EACCES``: not allowed,
``ECONNREFUSED``: nothing listens).  Then, unless ``--probe-only``, it connects a ZeroMQ
PULL (where faces would arrive), a PUSH and, with ``--ready``, a DEALER to each endpoint
(a capture deals its frames over a ROUTER to the DEALER that says it is ready), and for
``--wait-s`` seconds pulls everything it can, pushes the forged messages in turn, again
and again, and says the ready message on every DEALER.  The PUSH and DEALER sockets are
``ZMQ_IMMEDIATE``, so a message counts as sent only when a listener accepted the
connection.  It prints one JSON line, per endpoint: the probe, the messages pulled, the
messages pushed and the messages dealt to its DEALER.  Every socket has linger 0 and
every wait a deadline, so it always ends.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import json
import socket
import sys
import time

import zmq

LINGER_MS = 0
POLL_STEP_MS = 50
PROBE_TIMEOUT_S = 1.0


def probe(endpoint: str) -> str:
    """``connected`` when a plain socket reaches ``endpoint``, else the errno name of the refusal."""
    transport, _, address = endpoint.partition("://")
    if transport == "ipc":
        family, target = socket.AF_UNIX, address
    else:
        host, _, port = address.rpartition(":")
        family, target = socket.AF_INET, (host, int(port))
    with socket.socket(family, socket.SOCK_STREAM) as plain:
        plain.settimeout(PROBE_TIMEOUT_S)
        try:
            plain.connect(target)
        except TimeoutError:
            return "timeout"
        except OSError as error:
            return errno.errorcode.get(error.errno or 0, str(error))
    return "connected"


def _zmq_socket(context: zmq.Context, socket_type: int, endpoint: str) -> zmq.Socket:
    made = context.socket(socket_type)
    made.linger = LINGER_MS
    if socket_type in (zmq.PUSH, zmq.DEALER):
        made.setsockopt(zmq.IMMEDIATE, 1)
    made.connect(endpoint)
    return made


def attack(endpoints: list[str], messages: list[list[bytes]], wait_s: float,
           ready: list[bytes] | None = None) -> dict[str, dict[str, int]]:
    """``{"pulled", "pushed", "dealt"}`` counts per endpoint after ``wait_s`` of pulling from each,
    pushing ``messages`` in turn and, with ``ready``, saying it on a DEALER to each."""
    context = zmq.Context()
    pulls = {_zmq_socket(context, zmq.PULL, endpoint): endpoint for endpoint in endpoints}
    pushes = {_zmq_socket(context, zmq.PUSH, endpoint): endpoint for endpoint in endpoints}
    dealers = {_zmq_socket(context, zmq.DEALER, endpoint): endpoint for endpoint in endpoints} if ready else {}
    counts = {endpoint: {"pulled": 0, "pushed": 0, "dealt": 0} for endpoint in endpoints}
    try:
        poller = zmq.Poller()
        for receiver in (*pulls, *dealers):
            poller.register(receiver, zmq.POLLIN)
        deadline_s = time.monotonic() + wait_s
        for message in itertools.cycle(messages):
            if time.monotonic() >= deadline_s:
                break
            for push, endpoint in pushes.items():
                try:
                    push.send_multipart(message, zmq.NOBLOCK)
                    counts[endpoint]["pushed"] += 1
                except zmq.Again:  # no accepted connection to send into
                    pass
            for dealer in dealers:
                try:
                    dealer.send_multipart(ready, zmq.NOBLOCK)
                except zmq.Again:
                    pass
            for receiver, _event in poller.poll(POLL_STEP_MS):
                receiver.recv_multipart(zmq.NOBLOCK)
                if receiver in pulls:
                    counts[pulls[receiver]]["pulled"] += 1
                else:
                    counts[dealers[receiver]]["dealt"] += 1
    finally:
        for made in (*pulls, *pushes, *dealers):
            made.close(linger=LINGER_MS)
        context.term()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", action="append", default=[], help="an ipc:// or tcp:// endpoint to try")
    parser.add_argument("--message", action="append", default=[],
                        help="a forged message: its frames in hex, comma-separated (repeat for several)")
    parser.add_argument("--ready", default=None,
                        help="a ready message to say on a DEALER to each endpoint: its frames in hex, comma-separated")
    parser.add_argument("--wait-s", type=float, default=3.0, help="how long to pull and push")
    parser.add_argument("--probe-only", action="store_true", help="only try a plain connect to each endpoint")
    arguments = parser.parse_args(argv)
    report = {endpoint: {"probe": probe(endpoint)} for endpoint in arguments.endpoint}
    if not arguments.probe_only:
        messages = [[bytes.fromhex(frame) for frame in message.split(",")] for message in arguments.message]
        ready = [bytes.fromhex(frame) for frame in arguments.ready.split(",")] if arguments.ready else None
        counts = attack(arguments.endpoint, messages or [[b"forged"]], arguments.wait_s, ready)
        for endpoint, outcome in report.items():
            outcome.update(counts[endpoint])
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Why a connecting socket never gets through: failed CURVE handshakes, said in one line.

A stage whose key the listening host does not allow, or that holds another site's server
key, connects, fails the handshake, and retries for ever; from the inside it only looks
as if its upstream were silent.  libzmq's socket monitor does report each failure: an
authentication refusal (the listening host's allow-list lacks this host's key) or a
handshake that fails without detail (the peer holds another server key, or uses no keys
at all).  :class:`HandshakeWatch` reads those events without blocking and logs the first
failure of each endpoint and then every ``LOG_EVERY``-th, so retries cannot flood the log.
"""

from __future__ import annotations

import logging
from collections import Counter

import zmq
from zmq.utils.monitor import recv_monitor_message

LOGGER = logging.getLogger(__name__)
LOG_EVERY = 100
FAILURES = (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)


def handshake_problem(event: int, endpoint: str, key_name: str) -> str | None:
    """The line that says why a handshake with ``endpoint`` failed (None: the event is no failure)."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return (f"{endpoint} refused this host's key {key_name!r}: the host listening there does not allow it "
                f"(copy {key_name}.key into its authorized_clients folder, see `fakeblock keys generate`)")
    if event in (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
        return (f"the encrypted handshake with {endpoint} failed: the stage there holds another site's "
                f"server key or runs without keys (every host of a site needs the same server.key)")
    return None


class HandshakeWatch:
    """The monitors of one process's connecting CURVE sockets, checked from the stage's poll."""

    def __init__(self, name: str, key_name: str):
        self.name, self.key_name = name, key_name
        self.monitors: list[zmq.Socket] = []
        self.failures: Counter[tuple[str, int]] = Counter()

    def watch(self, socket: zmq.Socket) -> zmq.Socket:
        """Monitor ``socket``'s handshakes (before it connects); returns the monitor for the caller to close."""
        events = 0
        for event in FAILURES:
            events |= event
        monitor = socket.get_monitor_socket(events)
        monitor.setsockopt(zmq.LINGER, 0)
        self.monitors.append(monitor)
        return monitor

    def check(self) -> None:
        """Log the failures reported since the last check (never blocks)."""
        for monitor in self.monitors:
            while monitor.poll(0):
                try:
                    message = recv_monitor_message(monitor, zmq.NOBLOCK)
                except (zmq.ZMQError, ValueError):  # closing, or a message of another libzmq's layout
                    break
                raw_endpoint = message.get("endpoint", b"?")
                endpoint = (raw_endpoint.decode("utf-8", "replace") if isinstance(raw_endpoint, bytes)
                            else str(raw_endpoint))
                event = int(message["event"])
                problem = handshake_problem(event, endpoint, self.key_name)
                if problem is None:
                    continue
                self.failures[endpoint, event] += 1
                count = self.failures[endpoint, event]
                if count % LOG_EVERY == 1:
                    LOGGER.warning("%s%s", problem, f" ({count} attempts so far)" if count > 1 else "")

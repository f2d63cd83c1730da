"""Every endpoint of the pipeline and which side binds it.

Stable ends bind, scalable workers connect:

==============  ==========  ======================  =========================
link            binds       socket (binder/peer)    carries
==============  ==========  ======================  =========================
frames          capture     PUSH / PULL (detect)    Frame, to detect workers
faces_in        queue       PULL / PUSH (detect)    Faces from every detect worker
faces_out       queue       PUSH / PULL (classify)  Faces, to classify workers
results         display     PULL / PUSH (classify)  Result
display_frames  display     PULL / PUSH (capture)   Frame + EndOfStream for the overlay
control         supervisor  PUB / SUB (all)         Control (stop)
status          supervisor  PULL / PUSH (all)       Status heartbeats
==============  ==========  ======================  =========================

No stage hard-codes an address: they all receive an :class:`Endpoints`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

LINKS = ("frames", "faces_in", "faces_out", "results", "display_frames", "control", "status")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 5550


@dataclass(frozen=True)
class Endpoints:
    """ZeroMQ addresses of every link (see the module docstring for who binds)."""

    frames: str
    faces_in: str
    faces_out: str
    results: str
    display_frames: str
    control: str
    status: str

    def as_dict(self) -> dict[str, str]:
        """Plain dict, for logs and the stats file."""
        return asdict(self)


def ipc_endpoints(run_directory: str | Path) -> Endpoints:
    """Unix-socket endpoints in ``run_directory``: private to this machine, no ports to clash."""
    run_directory = Path(run_directory)
    return Endpoints(**{link: f"ipc://{run_directory / link}" for link in LINKS})


def tcp_endpoints(host: str = DEFAULT_HOST, base_port: int = DEFAULT_BASE_PORT) -> Endpoints:
    """TCP endpoints on consecutive ports from ``base_port`` (loopback by default)."""
    return Endpoints(**{link: f"tcp://{host}:{base_port + offset}" for offset, link in enumerate(LINKS)})


def make_run_directory() -> Path:
    """A fresh private directory for one pipeline's ipc sockets (short path: ipc names are limited)."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix="fakeblock-", dir=base))

"""Every endpoint of the pipeline and which side binds it.

Stable ends bind, scalable workers connect:

==============  ==========  ======================  =========================
link            binds       socket (binder/peer)    carries
==============  ==========  ======================  =========================
frames          capture     ROUTER / DEALER         Frame, to the stream's lease holder
faces_in        queue       PULL / PUSH (detect)    Faces from every detect worker
faces_out       queue       PUSH / PULL (classify)  Faces, to classify workers
results         display     PULL / PUSH (classify)  Result
display_frames  display     PULL / PUSH (capture)   Frame + EndOfStream for the overlay
control         supervisor  PUB / SUB (all)         Control (stop)
status          supervisor  PULL / PUSH (all)       Status heartbeats
==============  ==========  ======================  =========================

Several capture stages (several cameras, each its own stream) each bind their own
``frames`` endpoint; detect workers connect to all of them (``frames`` and
``extra_frames``, or with tracking their share of them), one DEALER each, and each
capture leases its stream to one of its readers (``capture/leases.py``).  Each capture
connects to the one ``display_frames`` endpoint, so every stream's frames and its
``EndOfStream`` still travel in order on one connection.

Which stage binds which link is in the stage registry (:mod:`fakeblock.common.stages`);
a stage beyond these five brings its own links (``extra_links``).  No stage hard-codes
an address: they all receive an :class:`Endpoints`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Mapping

from fakeblock.common.errors import UserError

LINKS = ("frames", "faces_in", "faces_out", "results", "display_frames", "control", "status")
SUPERVISOR_LINKS = ("control", "status")  # each supervisor's own: never shared with another run
DATA_LINKS = tuple(link for link in LINKS if link not in SUPERVISOR_LINKS)
LOCAL_SITE_FOLDER_NAME = "fakeblock-only"
# sun_path holds 108 bytes with its terminating NUL: a longer ipc:// path cannot be bound.
MAX_IPC_PATH_BYTES = 107
STATUS_SERVICE_NAME = "status-service"
RUN_DIRECTORY_PREFIX = "fakeblock-"  # each run's own directory of sockets: make_run_directory
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
    extra_frames: tuple[str, ...] = ()
    extra_links: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_links(cls, addresses: Mapping[str, str], extra_frames: tuple[str, ...] = (),
                   extra_links: tuple[tuple[str, str], ...] = ()) -> Endpoints:
        """Endpoints from a link -> address mapping that names every one of :data:`LINKS`."""
        return cls(frames=addresses["frames"], faces_in=addresses["faces_in"], faces_out=addresses["faces_out"],
                   results=addresses["results"], display_frames=addresses["display_frames"],
                   control=addresses["control"], status=addresses["status"], extra_frames=tuple(extra_frames),
                   extra_links=tuple(extra_links))

    def with_addresses(self, changes: Mapping[str, str]) -> Endpoints:
        """These endpoints with some links (standard or extra) at the addresses ``changes`` gives."""
        standard = {link: changes.get(link, getattr(self, link)) for link in LINKS}
        extra = tuple((link, changes.get(link, address)) for link, address in self.extra_links)
        return Endpoints.from_links(standard, self.extra_frames, extra)

    def link(self, name: str) -> str:
        """The address of link ``name``: one of :data:`LINKS` or an extra link."""
        if name in LINKS:
            return getattr(self, name)
        for link, address in self.extra_links:
            if link == name:
                return address
        raise KeyError(f"no link {name!r} in these endpoints")

    def all_frames(self) -> tuple[str, ...]:
        """Every capture's ``frames`` endpoint: detect workers connect to each."""
        return (self.frames, *self.extra_frames)

    def as_dict(self) -> dict:
        """Plain dict, for logs and the stats file (extra links by their names)."""
        plain = asdict(self)
        del plain["extra_links"]
        return {**plain, **dict(self.extra_links)}


def ipc_endpoints(run_directory: str | Path, extra_links: tuple[str, ...] = ()) -> Endpoints:
    """Unix-socket endpoints in ``run_directory``: private to this machine, no ports to clash."""
    run_directory = Path(run_directory)
    return Endpoints.from_links({link: f"ipc://{run_directory / link}" for link in LINKS},
                                extra_links=tuple((link, f"ipc://{run_directory / link}") for link in extra_links))


def tcp_endpoints(host: str = DEFAULT_HOST, base_port: int = DEFAULT_BASE_PORT) -> Endpoints:
    """TCP endpoints on consecutive ports from ``base_port`` (loopback by default)."""
    return Endpoints.from_links({link: f"tcp://{host}:{base_port + offset}" for offset, link in enumerate(LINKS)})


def make_run_directory() -> Path:
    """A fresh private directory for one pipeline's ipc sockets (short path: ipc names are limited)."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix=RUN_DIRECTORY_PREFIX, dir=base))


def user_folder(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """This user's folder ``name`` for state shared by all their runs on this machine (not created here).

    ``$XDG_RUNTIME_DIR/<name>`` when the session has one (systemd cleans it at logout), else
    ``<temp dir>/<name>-<uid>``: the same path for every run of this user, so runs find each other.
    """
    environ = os.environ if environ is None else environ
    runtime_directory = environ.get("XDG_RUNTIME_DIR")
    if runtime_directory and Path(runtime_directory).is_dir():
        return Path(runtime_directory) / name
    return Path(tempfile.gettempdir()) / f"{name}-{os.getuid()}"


def local_site_directory(environ: Mapping[str, str] | None = None) -> Path:
    """This user's folder for the data sockets that ``fakeblock up --only`` runs without a site file share.

    Not created here (see ``security.make_private_folder``).
    """
    return user_folder(LOCAL_SITE_FOLDER_NAME, environ)


def local_site_endpoints(site_directory: str | Path, run_directory: str | Path) -> Endpoints:
    """Every data link an ``ipc://`` socket in ``site_directory`` (shared with this user's other
    runs on this machine), control and status in ``run_directory`` (this run's own).

    Raises ``UserError`` when a socket path would be too long to bind.
    """
    addresses = {link: f"ipc://{Path(site_directory) / link}" for link in DATA_LINKS}
    addresses.update({link: f"ipc://{Path(run_directory) / link}" for link in SUPERVISOR_LINKS})
    for address in addresses.values():
        path = address.removeprefix("ipc://")
        if len(os.fsencode(path)) > MAX_IPC_PATH_BYTES:
            raise UserError(f"the socket path {path} is longer than {MAX_IPC_PATH_BYTES} bytes; "
                            f"set XDG_RUNTIME_DIR to a shorter folder")
    return Endpoints.from_links(addresses)


def with_ipc_links(endpoints: Endpoints, links: tuple[str, ...]) -> Endpoints:
    """``endpoints`` plus an ``ipc://`` address in its run directory for each new link in ``links``."""
    run_directory = run_directory_of(endpoints)
    known = set(LINKS) | {link for link, _ in endpoints.extra_links}
    new = tuple(dict.fromkeys(link for link in links if link not in known))
    if not new:
        return endpoints
    if run_directory is None:
        raise ValueError(f"links {', '.join(new)} need an ipc:// run directory to live in")
    return replace(endpoints, extra_links=endpoints.extra_links + tuple((link, f"ipc://{run_directory / link}")
                                                                      for link in new))


def endpoints_for_stage(endpoints: Endpoints, binds: Mapping[str, str], bound_links: tuple[str, ...] = (),
                        rewire: Mapping[str, str] | None = None) -> Endpoints:
    """The endpoints one stage uses.

    The links it binds (``bound_links``) get their bind addresses from ``binds`` where
    that names one, and each ``rewire`` entry points one of its fields at another link's
    address (see :class:`fakeblock.common.stages.StageSpec`).
    """
    resolved = endpoints.with_addresses({link: binds[link] for link in bound_links if link in binds})
    return resolved.with_addresses({field_name: resolved.link(link) for field_name, link in (rewire or {}).items()})


def run_directory_of(endpoints: Endpoints) -> Path | None:
    """The private folder of a pipeline's ``ipc://`` control socket (None for other transports)."""
    if not endpoints.control.startswith("ipc://"):
        return None
    return Path(endpoints.control.removeprefix("ipc://")).parent


def local_status_service(endpoints: Endpoints) -> str | None:
    """Where a supervisor answers ``fakeblock status`` on this machine: beside its control socket."""
    run_directory = run_directory_of(endpoints)
    return None if run_directory is None else f"ipc://{run_directory / STATUS_SERVICE_NAME}"

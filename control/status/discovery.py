"""Finding the pipelines running on this machine, for ``fakeblock status`` without a site file.

Every supervisor answers status requests on ``ipc://<run directory>/status-service`` and,
while it runs, leaves a small JSON note ``<pid>.json`` in a per-user folder:
``$XDG_RUNTIME_DIR/fakeblock/`` when the session has one (systemd cleans it at logout),
else ``<temp dir>/fakeblock-<uid>/``.  The note names the service address, host, stages
and the key settings a client needs.  ``fakeblock status`` reads every note whose process
is still alive.  A supervisor that died without cleaning up (SIGKILL, a power cut) leaves
its note and its run directory of sockets behind: ``fakeblock status`` and the next
supervisor to start remove both (:func:`remove_stale_runs`).

The folder is made ``0700``; a folder owned by someone else or open to others is not used
(another user could otherwise plant notes that point the client anywhere).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fakeblock.common.endpoints import RUN_DIRECTORY_PREFIX, user_folder
from fakeblock.common.security.access import SecurityConfig

LOGGER = logging.getLogger(__name__)
REGISTRY_FOLDER_NAME = "fakeblock"
NOTE_SUFFIX = ".json"
MAX_NOTE_BYTES = 16 * 1024


@dataclass(frozen=True)
class LocalPipeline:
    """What one running supervisor wrote about itself."""

    pid: int
    host: str
    status_service: str
    stages: tuple[str, ...] = ()
    security: SecurityConfig = field(default_factory=SecurityConfig)
    sources: tuple[str, ...] = ()  # what its captures read, for people: see source_description


def source_description(source: str, stream: str | None) -> str:
    """A capture's source as ``fakeblock status`` names it: ``office-woman.mp4``, or
    ``office-woman.mp4 as lobby`` when ``--stream`` named its stream."""
    name = source if "://" in source else Path(source).name or source
    return f"{name} as {stream}" if stream else name


def pipeline_labels(pipelines: list[LocalPipeline]) -> list[str]:
    """A name for each pipeline in ``fakeblock status``: its host, and when the host runs several,
    what each one reads (its stages when it reads nothing), with its pid only if that is still the same."""
    hosts = [pipeline.host for pipeline in pipelines]
    labels = [pipeline.host if hosts.count(pipeline.host) == 1
              else f"{pipeline.host}: {', '.join(pipeline.sources or pipeline.stages)}" for pipeline in pipelines]
    return [label if labels.count(label) == 1 else f"{label} (pid {pipeline.pid})"
            for label, pipeline in zip(labels, pipelines, strict=True)]


def registry_directory(environ=None) -> Path:
    """This user's folder of notes (not created here)."""
    return user_folder(REGISTRY_FOLDER_NAME, environ)


def _private_folder(folder: Path, create: bool) -> bool:
    """True when ``folder`` exists (made if ``create``), is ours and is closed to others."""
    if create:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        LOGGER.warning("%s is not a private folder of this user; ignoring it (remove it to fix)", folder)
        return False
    return True


def register(pipeline: LocalPipeline, folder: Path | None = None) -> Path | None:
    """Write this supervisor's note; returns its path (None when the folder cannot be used)."""
    folder = folder or registry_directory()
    try:
        if not _private_folder(folder, create=True):
            return None
        path = folder / f"{pipeline.pid}{NOTE_SUFFIX}"
        partial = folder / f".{pipeline.pid}{NOTE_SUFFIX}.partial"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(asdict(pipeline), handle)
        partial.replace(path)  # atomic: a reader never sees half a note
        return path
    except OSError as error:
        LOGGER.warning("cannot register with %s (fakeblock status will not find this pipeline): %s", folder, error)
        return None


def unregister(path: Path | None) -> None:
    """Remove a note written by :func:`register`."""
    if path is not None:
        path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_note(path: Path) -> LocalPipeline | None:
    """The note at ``path``, or None when it is unreadable or malformed."""
    try:
        if path.stat().st_size > MAX_NOTE_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        security = SecurityConfig(**data.get("security", {}))
        pipeline = LocalPipeline(int(data["pid"]), str(data["host"]), str(data["status_service"]),
                                 tuple(str(stage) for stage in data.get("stages", ())), security,
                                 tuple(str(source) for source in data.get("sources", ())))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        LOGGER.debug("ignoring %s: %s", path, error)
        return None
    return pipeline if pipeline.status_service.startswith("ipc://") else None


def _forget_dead(path: Path, pipeline: LocalPipeline) -> None:
    """Remove the note of a supervisor that died without cleaning up, and its run directory:
    only a directory of this user's, named as :func:`fakeblock.common.endpoints.make_run_directory`
    names them, holding nothing but sockets, never one a symbolic link leads to."""
    path.unlink(missing_ok=True)
    run_directory = Path(pipeline.status_service.removeprefix("ipc://")).parent
    try:
        info = run_directory.lstat()
        only_sockets = all(stat.S_ISSOCK(entry.lstat().st_mode) for entry in run_directory.iterdir())
    except OSError:
        return
    if (run_directory.name.startswith(RUN_DIRECTORY_PREFIX) and stat.S_ISDIR(info.st_mode)
            and info.st_uid == os.getuid() and only_sockets):
        shutil.rmtree(run_directory, ignore_errors=True)
        LOGGER.info("removed %s, left by fakeblock pid %d, which ended without cleaning up", run_directory,
                    pipeline.pid)


def local_pipelines(folder: Path | None = None) -> list[LocalPipeline]:
    """Every supervisor still running on this machine for this user, oldest first; the leftovers
    of those that died are removed."""
    folder = folder or registry_directory()
    if not _private_folder(folder, create=False):
        return []
    found = []
    for path in sorted(folder.glob(f"*{NOTE_SUFFIX}")):
        pipeline = _read_note(path)
        if pipeline is not None and _process_alive(pipeline.pid):
            found.append(pipeline)
        elif pipeline is not None:
            _forget_dead(path, pipeline)
    return sorted(found, key=lambda pipeline: pipeline.pid)


def remove_stale_runs(folder: Path | None = None) -> None:
    """Remove the notes and run directories of this user's supervisors that died without cleaning up."""
    try:
        local_pipelines(folder)
    except OSError as error:  # a folder we cannot read: nothing of ours to clean there
        LOGGER.debug("cannot look for stale runs: %s", error)

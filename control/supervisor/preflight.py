"""``fakeblock up``: check the user's request, then run the supervisor.

Everything that can be checked before processes start is checked here, so a bad source,
model, path or port is one clear line and a non-zero exit instead of a crash in a child.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from fakeblock.capture.flow import source_is_live
from fakeblock.common.config import DISPLAY_OUTPUTS, CaptureConfig, PipelineConfig
from fakeblock.common.endpoints import (
    RUN_DIRECTORY_PREFIX,
    endpoints_for_stage,
    local_status_service,
    run_directory_of,
)
from fakeblock.common.errors import UserError
from fakeblock.common.security.access import (
    ALWAYS_LOCAL_TRANSPORTS,
    Security,
    check_bind_allowed,
    check_libzmq,
    is_local_endpoint,
)
from fakeblock.common.sockets import ipc_in_use
from fakeblock.common.stages import STAGES, StageSpec
from fakeblock.control.metrics.token import check_metrics_settings
from fakeblock.display.results_file import STDOUT_PATH
from fakeblock.display.screen import screen_available

LOGGER = logging.getLogger(__name__)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MOUNT_TABLE = Path("/proc/self/mountinfo")
# File systems through which the kernel shows itself: they take no new files, whatever the
# permissions of their folders say (root may "write" /sys, yet creating /sys/r.jsonl fails).
KERNEL_FILE_SYSTEMS = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
                                 "configfs", "pstore", "bpf", "efivarfs", "devpts"})
# Files named when a path given for an output is a folder.
RESULTS_EXAMPLE, RECORD_EXAMPLE, STATS_EXAMPLE = "results.jsonl", "recording.mp4", "stats.json"


def camera_opens(index: int = 0) -> bool:
    """True when OpenCV can read a frame from camera ``index`` (its own warnings silenced: no camera is no news)."""
    import cv2

    from fakeblock.capture.core import quiet_opencv

    with quiet_opencv():
        capture = cv2.VideoCapture(index)
        try:
            return capture.isOpened() and capture.read()[0]
        finally:
            capture.release()


def choose_outputs(requested: tuple[str, ...], say) -> tuple[str, ...]:
    """Validate display outputs; a window with no screen falls back to the web view."""
    unknown = [name for name in requested if name not in DISPLAY_OUTPUTS]
    if unknown:
        raise UserError(f"unknown display output {unknown[0]!r}; choose from {', '.join(DISPLAY_OUTPUTS)}")
    outputs = tuple(dict.fromkeys(requested))
    if "window" in outputs and not screen_available():
        say("no screen available for a window; serving the web view instead")
        outputs = tuple(dict.fromkeys(("web" if name == "window" else name) for name in outputs))
    if len(outputs) > 1 and "none" in outputs:
        outputs = tuple(name for name in outputs if name != "none")
    return outputs


def check_port_free(host: str, port: int) -> None:
    """Raise ``UserError`` when ``host:port`` cannot be listened on."""
    if host not in LOOPBACK_HOSTS:
        raise UserError(f"the web view listens on loopback only without authentication; {host} is refused")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Like the web server itself: connections of a previous run in TIME_WAIT do not
        # count, a listening socket does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise UserError(f"{host}:{port} is already in use; choose another --web-port") from None


def check_writable(path: str | None, what: str, example: str) -> None:
    """Raise ``UserError`` when ``path`` cannot be written as ``what`` (``--results``, ...), with the true reason.

    ``example`` is a file name to suggest when ``path`` is a folder.
    """
    if not path:
        return
    try:
        problem = output_problem(Path(path).expanduser(), example)
    except OSError as error:
        problem = reason_of(error)
    if problem:
        raise UserError(f"cannot write {what} to {path}: {problem}")


def output_problem(target: Path, example: str) -> str | None:
    """Why a file cannot be written at ``target``, or None when it can (nothing is left behind)."""
    if target.is_dir():
        return f"it is a folder; name a file in it, such as {target / example}"
    if target.exists():  # a file to overwrite, or a pipe or device such as /dev/stdout
        return None if os.access(target, os.W_OK) else "the file is not writable"
    folder = target.resolve().parent
    if not folder.exists():
        return f"folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:  # the one sure test: the kernel's file systems refuse new files whatever the permissions say
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        kind = file_system_type(folder)
        if kind in KERNEL_FILE_SYSTEMS:
            return f"{folder} is in the kernel's {kind} file system, which takes no files; choose a folder on disk"
        return f"cannot create a file in folder {folder} ({reason_of(error)})"
    return None


def file_system_type(folder: Path, mount_table: Path = MOUNT_TABLE) -> str | None:
    """The type of the file system ``folder`` is on (``ext4``, ``proc``, ...), None when unknown (no /proc)."""
    try:
        lines = mount_table.read_text().splitlines()
    except OSError:
        return None
    best_mount, best_type = "", None
    for line in lines:
        fields, _separator, after = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not after:
            continue
        mount = parts[4].replace("\\040", " ")
        inside = folder == Path(mount) or Path(mount) in folder.parents
        if inside and len(mount) >= len(best_mount):
            best_mount, best_type = mount, after.split()[0]
    return best_type


def reason_of(error: OSError) -> str:
    """``Permission denied`` -> ``permission denied``, to sit inside a sentence."""
    text = error.strerror or str(error)
    return text[:1].lower() + text[1:]


def check_source(capture: CaptureConfig, say) -> CaptureConfig:
    """Open the source once (clear error if it fails); no source: camera 0, else the demo.

    Returns the capture settings with the source chosen and ``live`` decided.
    """
    from fakeblock.capture.core import open_source

    if capture.source in (None, ""):
        if camera_opens(0):
            capture = replace(capture, source="0")
        else:
            say("no camera at index 0; showing the built-in demo instead (use --source to choose)")
            capture = replace(capture, source="demo", live=True)  # a fallback demo loops, paced, until stopped
    source = open_source(capture.source, capture.realtime)
    try:
        live = source.live if capture.live is None else capture.live
    finally:
        source.close()
    return replace(capture, live=live)


def check_captures(config: PipelineConfig, say) -> PipelineConfig:
    """Check every source this host captures; the display runs live when any capture does.

    A display whose captures run elsewhere judges from the settings of the site's first
    capture alone (its ``live`` key, if set, decides).
    """
    slots = config.capture_slots()
    if slots:
        checked = [replace(slot, config=check_source(slot.config, say)) for slot in slots]
        captures = tuple(checked) if config.captures else ()
        config = replace(config, capture=checked[0].config, captures=captures)
        lives = [slot.config.live for slot in checked]
    else:
        lives = [source_is_live(config.capture.source, config.capture.realtime, config.capture.live)]
    return replace(config, display=replace(config.display, live=any(lives)))


def with_capture_settings(config: PipelineConfig, **changes) -> PipelineConfig:
    """``config`` with ``changes`` made to every capture's settings."""
    captures = tuple(replace(slot, config=replace(slot.config, **changes)) for slot in config.captures)
    return replace(config, capture=replace(config.capture, **changes), captures=captures)


def check_model(config: PipelineConfig) -> None:
    """Load the model once so a missing or malformed file fails before anything starts."""
    from fakeblock.classify.model_runtime import EmotionModel

    EmotionModel(config.classify.model, threads=1)


def listening_addresses(config: PipelineConfig) -> list[str]:
    """Every address this host's supervisor and stages will bind."""
    addresses = [config.endpoints.control, config.endpoints.status, local_status_service(config.endpoints),
                 config.status_service]
    for spec in STAGES:
        if spec.name not in config.stages:
            continue
        if spec.per_capture:  # each capture has its own frames address
            addresses += [slot.frames_bind for slot in config.capture_slots()]
            continue
        stage_endpoints = endpoints_for_stage(config.endpoints, config.binds, spec.binds, spec.rewire)
        addresses += [stage_endpoints.link(link) for link in spec.binds]
    return [address for address in dict.fromkeys(addresses) if address]


def check_security(config: PipelineConfig) -> None:
    """libzmq, key files and the bind policy, before any process starts.

    Listening beyond loopback needs keys (or ``insecure``, which warns every start); loopback
    TCP without keys is allowed with a warning (every user of this machine can reach it); with
    keys, every host needs the server pair (its supervisor listens) and a client pair.  A
    Unix socket another run of this user still listens on is refused.
    """
    addresses = listening_addresses(config)
    if config.security.keys_directory or not all(is_local_endpoint(address) for address in addresses):
        check_libzmq()
    if not config.security.insecure:  # insecure: each socket warns as it binds, no need to say it twice
        for address in addresses:
            check_bind_allowed(address, config.security)
    warn_open_loopback(addresses, config)
    for address in addresses:
        if ipc_in_use(address):
            raise UserError(f"{address} is already in use: another fakeblock of yours runs that stage here; "
                            f"stop it first")
    Security(config.security).check_keys(server=True, client=True)


def warn_open_loopback(addresses: list[str], config: PipelineConfig) -> None:
    """Warn once about loopback TCP sockets without keys: other users of this machine can reach them."""
    if config.security.keys_directory:
        return
    open_loopback = [address for address in addresses if is_local_endpoint(address)
                     and address.partition("://")[0] not in ALWAYS_LOCAL_TRANSPORTS]
    if open_loopback:
        LOGGER.warning("INSECURE: listening on %s without CurveZMQ keys: every user and program on this machine "
                       "can read and inject messages there; pass --keys DIR to close them",
                       ", ".join(open_loopback))


def check_metrics(config: PipelineConfig) -> None:
    """The metrics settings (token file, loopback rule) and a port no link of this host takes too.

    The supervisor binds the port itself, before any stage starts: a port in use is refused there.
    """
    check_metrics_settings(config.supervisor)
    port = config.supervisor.metrics_port
    for address in listening_addresses(config):
        if port is not None and address.startswith("tcp://") and address.rpartition(":")[2] == str(port):
            raise UserError(f"metrics port {port} is also where {address} listens; choose another --metrics-port")


def check_display(config: PipelineConfig, say) -> PipelineConfig:
    """Outputs (a window with no screen falls back to the web view), web port and output paths."""
    outputs = choose_outputs(config.display.outputs, say)
    display = replace(config.display, outputs=outputs)
    if "web" in outputs:
        check_port_free(display.web_host, display.web_port)
    if display.record == STDOUT_PATH:
        raise UserError("--record - is refused: a video cannot go to stdout; name an .mp4 file")
    if display.results != STDOUT_PATH:
        check_writable(display.results, "--results", RESULTS_EXAMPLE)
    check_writable(display.record, "--record", RECORD_EXAMPLE)
    check_some_output(replace(config, display=display))
    if display.results == STDOUT_PATH and config.show_status and sys.stdout.isatty():
        LOGGER.info("results go to this terminal: no live status table (log lines instead)")
        config = replace(config, show_status=False)
    return replace(config, display=display)


def check_some_output(config: PipelineConfig) -> None:
    """Refuse a display that shows nothing when the run has no other output: it would end with nothing to show.

    Outputs: a window or the web view, ``--results``, ``--record``, and this host's
    ``--stats`` summary and ``--metrics-port`` (a run watched through its metrics).
    """
    display = config.display
    shown = any(name in ("window", "web") for name in display.outputs)
    if shown or display.results or display.record or config.stats or config.supervisor.metrics_port is not None:
        return
    raise UserError("--display none and no --results, --record, --stats or --metrics-port: nothing would be shown "
                    "or kept; add --results FILE (- for stdout)")


def prepare(config: PipelineConfig, say) -> PipelineConfig:
    """Every check and fallback for the stages run here, in the order a user would want to hear about them."""
    check_security(config)
    check_metrics(config)
    config = check_captures(config, say)
    if "classify" in config.stages:
        check_model(config)
    if "display" in config.stages:
        config = check_display(config, say)
    check_writable(config.stats, "--stats", STATS_EXAMPLE)
    display = config.display
    needs_pixels = bool(display.record) or any(name in ("window", "web") for name in display.outputs)
    return with_capture_settings(config, send_frames_to_display=needs_pixels)


def run(config: PipelineConfig, say, log_level: int = logging.INFO, stages: tuple[StageSpec, ...] = STAGES) -> int:
    """Prepare, supervise ``stages`` (the registry's), and clean up the socket directory; return the exit code."""
    try:
        config = prepare(config, say)
        # Imported once the checks passed: a refused run says so without loading the supervisor.
        from fakeblock.control.supervisor.loop import Supervisor

        if "display" in config.stages and "web" in config.display.outputs:
            say(f"web view: http://{config.display.web_host}:{config.display.web_port}/")
        return Supervisor(config, log_level, stages).run()
    finally:
        remove_run_directory(config)


def remove_run_directory(config: PipelineConfig) -> None:
    """Delete the private folder of this pipeline's ipc sockets (only one fakeblock made)."""
    run_directory = run_directory_of(config.endpoints)
    if run_directory is not None and run_directory.name.startswith(RUN_DIRECTORY_PREFIX):
        shutil.rmtree(run_directory, ignore_errors=True)

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
from dataclasses import replace
from pathlib import Path

from fakeblock.common.config import DISPLAY_OUTPUTS, PipelineConfig
from fakeblock.common.errors import UserError

LOGGER = logging.getLogger(__name__)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def screen_available() -> bool:
    """True when a window can be opened (an X11 or Wayland display on Linux)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def camera_opens(index: int = 0) -> bool:
    """True when OpenCV can read a frame from camera ``index``."""
    import cv2

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


def check_writable(path: str | None, what: str) -> None:
    """Raise ``UserError`` when ``path``'s folder does not exist or is not writable."""
    if not path:
        return
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise UserError(f"{path}: folder {folder} does not exist (for {what})")
    if not os.access(folder, os.W_OK):
        raise UserError(f"{path}: folder {folder} is not writable (for {what})")


def check_source(config: PipelineConfig, say) -> PipelineConfig:
    """Open the source once (clear error if it fails); no source: camera 0, else the demo."""
    from fakeblock.capture.core import open_source

    capture = config.capture
    if capture.source in (None, ""):
        if camera_opens(0):
            capture = replace(capture, source="0")
        else:
            say("no camera at index 0; showing the built-in demo instead (use --source to choose)")
            capture = replace(capture, source="demo")
    source = open_source(capture.source, capture.realtime)
    try:
        live = source.live if capture.live is None else capture.live
    finally:
        source.close()
    capture = replace(capture, live=live)
    return replace(config, capture=capture, display=replace(config.display, live=live))


def check_model(config: PipelineConfig) -> None:
    """Load the model once so a missing or malformed file fails before anything starts."""
    from fakeblock.classify.runtime import EmotionModel

    EmotionModel(config.classify.model, threads=1)


def prepare(config: PipelineConfig, say) -> PipelineConfig:
    """Every check and fallback, in the order a user would want to hear about them."""
    config = check_source(config, say)
    check_model(config)
    outputs = choose_outputs(config.display.outputs, say)
    display = replace(config.display, outputs=outputs)
    if "web" in outputs:
        check_port_free(display.web_host, display.web_port)
    check_writable(display.results, "--results")
    check_writable(display.record, "--record")
    check_writable(config.stats, "--stats")
    needs_pixels = bool(display.record) or any(name in ("window", "web") for name in outputs)
    capture = replace(config.capture, send_frames_to_display=needs_pixels)
    return replace(config, display=display, capture=capture)


def run(config: PipelineConfig, say, log_level: int = logging.INFO) -> int:
    """Prepare, supervise, and clean up the socket directory; return the exit code."""
    from fakeblock.common.supervisor import Supervisor

    config = prepare(config, say)
    if "web" in config.display.outputs:
        say(f"web view: http://{config.display.web_host}:{config.display.web_port}/")
    try:
        return Supervisor(config, log_level).run()
    finally:
        run_directory = Path(config.endpoints.control.removeprefix("ipc://")).parent
        if config.endpoints.control.startswith("ipc://") and run_directory.name.startswith("fakeblock-"):
            shutil.rmtree(run_directory, ignore_errors=True)

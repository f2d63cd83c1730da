"""Typed configuration of each stage and of a whole pipeline (what ``fakeblock up`` runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Mapping

from fakeblock.common.endpoints import DEFAULT_HOST, Endpoints
from fakeblock.common.options import derived, option
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.stages import STAGE_NAMES

DISPLAY_OUTPUTS = ("window", "web", "none")
MAX_PORT = 65535
DEFAULT_WEB_PORT = 8080
DEFAULT_METRICS_PORT = 9108  # the conventional port of docs and manifests; metrics stay off unless a port is given


@dataclass(frozen=True)
class CaptureConfig:
    """Where frames come from and how they flow.

    ``live`` None means automatic: cameras and stream URLs are live (drop stale frames),
    files are lossless (every frame, then exit) unless ``realtime`` paces them like a camera.
    """

    source: str = option("0", "A video, image, folder of images, stream URL, camera index or 'demo' "
                         "(default: camera 0, else the built-in demo).", flags=("--source", "-s"),
                         command_line_default=None, metavar="PATH|URL|CAMERA")
    stream: str | None = option(None, "Stream name in results (default: camera0, the file's stem, ...).",
                                metavar="NAME")
    realtime: bool = option(False, "Pace a file at its own frame rate, like a camera: late frames are dropped "
                            "(default: every frame, as fast as the stages go).")
    live: bool | None = option(None, "Drop stale frames to keep latency low (default: cameras and streams yes, "
                               "files no).", command_line=False)
    send_frames_to_display: bool = derived(True, "Whether the display needs the pixels (a window, the web "
                                           "view or a recording).")
    max_frames: int | None = option(None, "Stop after this many frames (default: at the source's end).", minimum=1,
                                    metavar="N")
    epoch: int = derived(0, "How often the source started again from its first frame (see wire.REWIND).")

    def for_epoch(self, epoch: int) -> CaptureConfig:
        """These settings for a capture restarted to send its stream again, in ``epoch``."""
        return replace(self, epoch=epoch)


@dataclass(frozen=True)
class DetectConfig:
    """Haar cascade settings; ``detect_scale`` < 1 detects on a downscaled copy.

    ``tracking`` follows faces from frame to frame (:mod:`fakeblock.detect.tracking`) and
    scans the whole frame only once every ``scan_cycle_frames`` frames, spread over them;
    off, every frame gets the full-frame scan (the reference).  ``opencv_threads`` 0 means
    automatic: the machine's cores shared among the detect workers of this host.
    ``worker_count`` and ``first_worker`` are worked out by ``fakeblock up``: the detect
    workers of the whole site (0: this host's) and the site-wide number of this host's
    first one.  With tracking each stream goes to one worker (``stream number %
    worker_count``), which keeps its tracks; the other workers stand by as its spares.
    """

    scale_factor: float = option(1.1, "Size step between the face finder's passes (OpenCV's Haar cascade, a "
                                 "fast classic face detector): lower finds more faces, slower.", minimum=1.01,
                                 metavar="FACTOR")
    min_neighbors: int = option(5, "Overlapping hits a face needs to count: higher, fewer false faces.", minimum=0,
                                metavar="N")
    min_size_px: int = option(48, "Smallest face to find, in source pixels.", minimum=8, flags=("--min-size",),
                              metavar="PIXELS")
    detect_scale: float = option(1.0, "Find faces on a copy scaled by this: below 1 is faster but misses small "
                                 "faces.", minimum=0.1, maximum=1.0, metavar="FACTOR")
    tracking: bool = option(True, "on: follow faces between frames (track ids, steady emotions, faster); "
                            "off: scan every whole frame.", words=True)
    scan_cycle_frames: int = option(30, "With tracking, every place of the frame is scanned once per this many "
                                    "frames (a still new face waits at most that).", minimum=1, maximum=600,
                                    metavar="FRAMES")
    opencv_threads: int = option(0, "OpenCV threads per detect worker (0: the cores shared among them).",
                                 minimum=0, command_line=False)
    worker_count: int = derived(0, "Detect workers of the whole site (0: this host's).")
    first_worker: int = derived(0, "Site-wide number of this host's first detect worker.")
    follow_epochs: bool = derived(False, "Track a lossless stream only from its first frame in each epoch: set "
                                  "where the supervisor rewinds the sources after a crash.")

    def for_workers(self, workers_here: int, streams: int = 0) -> DetectConfig:
        """These settings for one of ``workers_here`` detect workers on this host (threads and worker count).

        The cores are shared among the workers that have work: with tracking and ``streams``
        streams in the site, only those a stream goes to (one stream keeps one worker busy,
        which then gets every core, so a second worker never slows it down).
        """
        site_workers = self.worker_count or workers_here
        busy = workers_here
        if self.tracking and streams > 0:
            busy = sum(any(stream % site_workers == self.first_worker + worker for stream in range(streams))
                       for worker in range(workers_here))
        return replace(self, opencv_threads=detect_threads(self, max(1, busy)), worker_count=site_workers)


def detect_threads(config: DetectConfig, workers_here: int) -> int:
    """OpenCV threads for each detect worker: as configured, or the cores shared among them."""
    if config.opencv_threads > 0:
        return config.opencv_threads
    return max(1, (os.cpu_count() or 1) // max(1, workers_here))


@dataclass(frozen=True)
class ClassifyConfig:
    """Model and batching: a batch goes at ``max_batch_size`` faces or after ``batch_timeout_ms``."""

    model: str | None = option(None, "A .tflite or .keras model file (default: the shipped model).",
                               metavar="FILE")
    max_batch_size: int = option(32, "Most faces per model call.", minimum=1, maximum=256,
                                 metavar="N")
    batch_timeout_ms: float = option(10.0, "Longest wait, in milliseconds, for a batch to fill.", minimum=0,
                                     metavar="MS")
    threads: int | None = option(None, "Threads of the model runtime (default: its own choice).", minimum=1,
                                 command_line=False)


@dataclass(frozen=True)
class DisplayConfig:
    """Outputs of the display stage: any of window/web/none, plus a video and a results file.

    ``expected_streams`` is how many capture stages feed it: a lossless display is done only
    once that many streams have ended and been written.
    """

    outputs: tuple[str, ...] = option(("none",), "Where to show the video, a comma list of window, web (a page "
                                      "at --web-port) and none. With no screen, a window falls back to the web "
                                      "view.", choices=DISPLAY_OUTPUTS,
                                      flags=("--display", "-d"), command_line_default="window", comma_list=True,
                                      metavar="OUTPUTS")
    record: str | None = option(None, "Write the annotated video to this .mp4 file (default: none).",
                                metavar="FILE")
    results: str | None = option(None, "Write one JSON line per frame to this file, or to stdout if FILE is - "
                                 "(default: none).", metavar="FILE")
    web_host: str = option(DEFAULT_HOST, "Address of the web view (loopback unless keys are configured).",
                           command_line=False)
    web_port: int = option(DEFAULT_WEB_PORT, "Port of the web view, open to this machine only.", minimum=1,
                           maximum=MAX_PORT, metavar="PORT")
    live: bool = derived(False, "Whether the streams are live (show the newest frame, never wait).")
    window_title: str = option("fakeblock", "Title of the window output.", command_line=False)
    expected_streams: int = derived(1, "How many capture stages feed the display.")
    resume: bool = derived(False, "A restarted display: append to the results file, after the frames in it.")

    def for_restart(self) -> DisplayConfig:
        """These settings for a display the supervisor restarts after a crash."""
        return replace(self, resume=True)


@dataclass(frozen=True)
class SupervisorConfig:
    """The supervisor's own HTTP endpoint: Prometheus ``/metrics``, ``/healthz`` and ``/readyz``.

    Off unless ``metrics_port`` is given.  Loopback by default; another address needs a
    token file (``/metrics`` then asks for ``Authorization: Bearer <token>``), see
    :mod:`fakeblock.control.metrics.http_server`.
    """

    metrics_port: int | None = option(None, f"Serve /metrics for Prometheus (a monitoring system), /healthz and "
                                      f"/readyz on this port (conventionally {DEFAULT_METRICS_PORT}; default: off).",
                                      minimum=1,
                                      maximum=MAX_PORT, metavar="PORT")
    metrics_host: str = option(DEFAULT_HOST, "Address the metrics server listens on; an address other "
                               "machines can reach needs a --metrics-token-file.", metavar="ADDRESS")
    metrics_token_file: str | None = option(None, "File holding the password (bearer token) /metrics asks for, "
                                            "yours or root's and unreadable by others (default: none).",
                                            metavar="FILE")


@dataclass(frozen=True)
class CaptureSlot:
    """One of several capture stages a host runs: its number in the site, settings and listening address."""

    index: int
    config: CaptureConfig
    frames_bind: str

    def endpoints(self, shared: Endpoints) -> Endpoints:
        """``shared`` with this capture's own ``frames`` address (each capture binds its own)."""
        return replace(shared, frames=self.frames_bind)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one ``fakeblock up`` supervises.

    ``stages`` are the stages this host runs (all by default).  ``binds`` gives, per link a
    stage here binds, the address it listens on when that differs from ``endpoints``
    (e.g. ``0.0.0.0``), and ``captures`` the capture stages when a site has several (empty:
    one capture, ``capture``).  ``status_service`` is where this supervisor answers
    ``fakeblock status`` over the network (None: only locally); ``host`` names this host
    in those answers; ``supervisor`` its metrics and health endpoint.
    """

    endpoints: Endpoints
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    detect_workers: int = option(1, "Detect processes (they find the faces).", minimum=1, metavar="N")
    classify_workers: int = option(1, "Classify processes (they run the emotion model).", minimum=1, metavar="N")
    stats: str | None = None
    show_status: bool = True
    security: SecurityConfig = field(default_factory=SecurityConfig)
    stages: tuple[str, ...] = STAGE_NAMES
    binds: Mapping[str, str] = field(default_factory=dict)
    captures: tuple[CaptureSlot, ...] = ()
    status_service: str | None = None
    host: str | None = None

    def capture_slots(self) -> tuple[CaptureSlot, ...]:
        """Every capture stage this host runs (one from ``capture`` unless ``captures`` lists several)."""
        if "capture" not in self.stages:
            return ()
        return self.captures or (CaptureSlot(0, self.capture, self.binds.get("frames", self.endpoints.frames)),)

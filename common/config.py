"""Typed configuration of each stage and of a whole pipeline (what ``fakeblock up`` runs)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from fakeblock.common.endpoints import Endpoints
from fakeblock.common.security import SecurityConfig

DISPLAY_OUTPUTS = ("window", "web", "none")
STAGE_NAMES = ("capture", "detect", "queue", "classify", "display")


@dataclass(frozen=True)
class CaptureConfig:
    """Where frames come from and how they flow.

    ``live`` None means automatic: cameras and stream URLs are live (drop stale frames),
    files are lossless (every frame, then exit) unless ``realtime`` paces them like a camera.
    """

    source: str = "0"
    stream: str | None = None
    realtime: bool = False
    live: bool | None = None
    send_frames_to_display: bool = True
    max_frames: int | None = None


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
    worker_count``), which keeps its tracks.
    """

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size_px: int = 48
    detect_scale: float = 1.0
    tracking: bool = True
    scan_cycle_frames: int = 30
    opencv_threads: int = 0
    worker_count: int = 0
    first_worker: int = 0


def detect_threads(config: DetectConfig, workers_here: int) -> int:
    """OpenCV threads for each detect worker: as configured, or the cores shared among them."""
    if config.opencv_threads > 0:
        return config.opencv_threads
    return max(1, (os.cpu_count() or 1) // max(1, workers_here))


@dataclass(frozen=True)
class ClassifyConfig:
    """Model and batching: a batch goes at ``max_batch_size`` faces or after ``batch_timeout_ms``."""

    model: str | None = None
    max_batch_size: int = 32
    batch_timeout_ms: float = 10.0
    threads: int | None = None


@dataclass(frozen=True)
class DisplayConfig:
    """Outputs of the display stage: any of window/web/none, plus a video and a results file.

    ``expected_streams`` is how many capture stages feed it: a lossless display is done only
    once that many streams have ended and been written.
    """

    outputs: tuple[str, ...] = ("none",)
    record: str | None = None
    results: str | None = None
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    live: bool = False
    window_title: str = "fakeblock"
    expected_streams: int = 1


@dataclass(frozen=True)
class CaptureSlot:
    """One of several capture stages a host runs: its number in the site, settings and listening address."""

    index: int
    config: CaptureConfig
    frames_bind: str


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one ``fakeblock up`` supervises.

    ``stages`` are the stages this host runs (all by default).  ``binds`` gives, per link a
    stage here binds, the address it listens on when that differs from ``endpoints``
    (e.g. ``0.0.0.0``), and ``captures`` the capture stages when a site has several (empty:
    one capture, ``capture``).  ``status_service`` is where this supervisor answers
    ``fakeblock status`` over the network (None: only locally); ``host`` names this host
    in those answers.
    """

    endpoints: Endpoints
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    detect_workers: int = 1
    classify_workers: int = 1
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

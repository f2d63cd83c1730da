"""One host's share of a deployment file: which stages run here, where they listen, what they run with.

:func:`plan_host` picks the stages (``--only``, else those placed on ``--host``, else all
of a one-host site), works out which host this is, and returns a :class:`HostPlan` whose
:meth:`HostPlan.pipeline_config` is what this host's supervisor runs.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from fakeblock.common.config import CaptureSlot, PipelineConfig
from fakeblock.common.endpoints import Endpoints, endpoints_for_stage
from fakeblock.common.errors import UserError
from fakeblock.common.security.access import SecurityConfig, check_bind_allowed
from fakeblock.common.stages import stage_spec
from fakeblock.control.site.loading import Site
from fakeblock.control.site.schema import HOST_VARIABLE, ONLY_VARIABLE, STAGE_CONFIGS, STAGE_NAMES, tcp

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostPlan:
    """What one host's supervisor runs: stages, workers, addresses and security.

    ``binds`` maps each link a stage here listens on to its bind address (``frames``: the
    first capture here); ``captures`` are the numbers of the site's capture stages that
    run here.
    """

    site: Site
    host: str
    stages: tuple[str, ...]
    endpoints: Endpoints
    binds: Mapping[str, str]
    status_bind: str
    workers: Mapping[str, int]
    captures: tuple[int, ...] = ()

    @property
    def security(self) -> SecurityConfig:
        """The site's security settings."""
        return self.site.security

    def endpoints_for(self, stage: str) -> Endpoints:
        """The endpoints to give ``stage``: its own links at their bind address, the rest to connect."""
        spec = stage_spec(stage)
        return endpoints_for_stage(self.endpoints, self.binds, spec.binds, spec.rewire)

    def capture_slots(self) -> tuple[CaptureSlot, ...]:
        """The capture stages run here, each with its settings and frames bind address."""
        return tuple(CaptureSlot(index, self.site.stage_config("capture", self.site.captures[index]),
                                 self.site.captures[index].bind_endpoints()["frames"]) for index in self.captures)

    def check_binds(self) -> None:
        """Refuse (or, with insecure, warn about) every non-loopback bind without keys."""
        captures = [slot.frames_bind for slot in self.capture_slots()]
        for endpoint in dict.fromkeys((*self.binds.values(), *captures, self.status_bind)):
            check_bind_allowed(endpoint, self.security)

    def pipeline_config(self, stats: str | None = None, show_status: bool = True) -> PipelineConfig:
        """A :class:`PipelineConfig` with this host's stages, configs, workers, addresses and security."""
        configs = {stage: self.site.stage_config(stage) for stage in STAGE_CONFIGS}
        slots = self.capture_slots()
        if slots:
            configs["capture"] = slots[0].config
        configs["display"] = replace(configs["display"], expected_streams=len(self.site.placements("capture")))
        if "detect" in self.stages:
            # Tracking gives each stream to one detect worker of the whole site.
            hosts, workers = self.site.hosts_of("detect"), self.workers.get("detect", 1)
            configs["detect"] = replace(configs["detect"], worker_count=len(hosts) * workers,
                                        first_worker=hosts.index(self.host) * workers)
        return PipelineConfig(endpoints=self.endpoints, **configs, detect_workers=self.workers.get("detect", 1),
                              classify_workers=self.workers.get("classify", 1), stats=stats,
                              show_status=show_status, security=self.security, stages=self.stages,
                              binds=dict(self.binds), captures=slots if len(self.site.captures) > 1 else (),
                              status_service=self.status_bind, host=self.host, supervisor=self.site.supervisor)


def _parse_only(only) -> tuple[str, ...] | None:
    if only is None or only == "":
        return None
    names = only.replace(",", " ").split() if isinstance(only, str) else list(only)
    unknown = [name for name in names if name not in STAGE_NAMES]
    if unknown:
        raise UserError(f"--only: unknown stage {unknown[0]!r}; choose from {', '.join(STAGE_NAMES)}")
    if not names:
        raise UserError("--only: name at least one stage")
    return tuple(stage for stage in STAGE_NAMES if stage in names)


def _select_stages(site: Site, only: tuple[str, ...] | None, host: str | None) -> tuple[str, ...]:
    if only:
        return only
    if host:
        stages = tuple(stage for stage in STAGE_NAMES if host in site.hosts_of(stage))
        if not stages:
            raise UserError(f"{site.source}: no stage runs on {host}")
        return stages
    if len(site.hosts()) == 1:
        return STAGE_NAMES
    raise UserError(f"{site.source} places stages on {len(site.hosts())} hosts ({', '.join(site.hosts())}); "
                    f"pass --only STAGES (e.g. --only detect,classify) or --host HOST")


def is_this_machine(host: str) -> bool:
    """True when ``host`` resolves to an address of this machine (a UDP socket can bind to it)."""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)}
    except OSError:
        return False
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((address, 0))
                return True
            except OSError:
                continue
    return False


def _choose_host(site: Site, stages: tuple[str, ...], host: str | None) -> str:
    """The host named by ``--host``, else the one host every selected stage may run on."""
    if host:
        return host
    # Every selected stage must run here, so only hosts they all list are candidates.
    candidates = [name for name in site.hosts_of(stages[0])
                  if all(name in site.hosts_of(stage) for stage in stages)]
    if not candidates:
        placed = "; ".join(f"{stage} on {', '.join(site.hosts_of(stage))}" for stage in stages)
        raise UserError(f"{site.source} places these stages on different hosts ({placed}); "
                        f"run each host's stages there")
    if len(candidates) == 1:
        return candidates[0]
    local = [name for name in candidates if is_this_machine(name)]
    if len(local) == 1:
        return local[0]
    raise UserError(f"cannot tell which host this is: {', '.join(stages)} may run on {', '.join(candidates)}; "
                    f"pass --host HOST or set {HOST_VARIABLE}")


def _binds_here(site: Site, stages: tuple[str, ...], captures: tuple[int, ...]) -> dict[str, str]:
    """Link -> bind address for the links this host's stages listen on (``frames``: its first capture)."""
    binds = {link: address for stage in stages if stage != "capture"
             for link, address in site.stages[stage].bind_endpoints().items()}
    if captures:
        binds["frames"] = site.captures[captures[0]].bind_endpoints()["frames"]
    return binds


def plan_host(site: Site, run_directory: str | Path, only=None, host: str | None = None,
              environ: Mapping[str, str] | None = None) -> HostPlan:
    """This host's share of ``site``; ``only``/``host`` default to ``FAKEBLOCK_ONLY``/``FAKEBLOCK_HOST``.

    Control and status are ``ipc://`` sockets in ``run_directory``: each supervisor runs
    its own stages, and answers the rest of the site on its status service.
    """
    environ = os.environ if environ is None else environ
    only = _parse_only(only if only is not None else environ.get(ONLY_VARIABLE))
    host = host or environ.get(HOST_VARIABLE) or None
    stages = _select_stages(site, only, host)
    host = _choose_host(site, stages, host)
    for stage in stages:
        if host not in site.hosts_of(stage):
            raise UserError(f"{site.source} places {stage} on {', '.join(site.hosts_of(stage))}, not on {host}; "
                            f"run it there or change stages.{stage}.host")
    captures = tuple(index for index, placement in enumerate(site.placements("capture"))
                     if "capture" in stages and placement.hosts[0] == host)
    run_directory = Path(run_directory)
    endpoints = site.connect_endpoints(f"ipc://{run_directory / 'control'}", f"ipc://{run_directory / 'status'}")
    LOGGER.debug("%s: this host is %s and runs %s", site.source, host, ", ".join(stages))
    return HostPlan(site=site, host=host, stages=stages, endpoints=endpoints,
                    binds=_binds_here(site, stages, captures),
                    status_bind=tcp(site.supervisor_bind or host, site.supervisor_port),
                    workers={stage: site.stages[stage].workers for stage in stages}, captures=captures)

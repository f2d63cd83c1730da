"""The deployment file: where each stage listens and how many workers it runs, on every host.

Every host runs the same TOML file and picks its share with ``--only`` (or ``--host``)::

    [site]
    keys = "/etc/fakeblock/keys"   # CurveZMQ keys (see fakeblock.common.security); optional
    insecure = false               # allow non-loopback binds without keys (warns every start)
    client_key = "client"          # which DIR/<name>.key_secret this host connects with

    [supervisor]                   # each host's supervisor answers `fakeblock status` here
    port = 5557                    # default 5557
    bind = "0.0.0.0"               # optional; default: the host it runs on

    [stages.capture]               # capture, detect, queue, classify, display
    host = "10.0.0.5"              # where it runs; others connect here (default 127.0.0.1)
    bind = "0.0.0.0"               # where it listens (default: host)
    port = 5550                    # first port; a stage with two links uses port and port + 1
    source = "0"                   # ... any field of the stage's config dataclass

Per stage: capture, queue and display listen (``host``, ``bind``, ``port`` or ``ports`` =
one per link); detect and classify only connect, so they take ``host`` as one address or a
list of hosts that each run ``workers`` processes.  Other keys are the fields of
``CaptureConfig``, ``DetectConfig``, ``ClassifyConfig`` and ``DisplayConfig`` (except those
``fakeblock up`` derives).  Default ports follow ``tcp_endpoints``: frames 5550, faces
5551-5552, results and display frames 5553-5554.  Relative paths are relative to the
working directory, as on the command line.

Control and status links stay on each host (``ipc://`` in the run directory): each
supervisor stops and watches only its own stages.  To see the whole site, each supervisor
also binds a small REP *status service* at ``tcp://<host>:<supervisor.port>``;
``fakeblock status --config site.toml`` asks every host in :meth:`Site.status_endpoints`.

Environment variables override the file (for containers):

- ``FAKEBLOCK_<KEY>`` for ``[site]`` keys: ``FAKEBLOCK_KEYS``, ``FAKEBLOCK_INSECURE``, ``FAKEBLOCK_CLIENT_KEY``;
- ``FAKEBLOCK_SUPERVISOR_<KEY>``: ``FAKEBLOCK_SUPERVISOR_PORT``, ``FAKEBLOCK_SUPERVISOR_BIND``;
- ``FAKEBLOCK_<STAGE>_<KEY>``: ``FAKEBLOCK_CAPTURE_SOURCE``, ``FAKEBLOCK_DETECT_WORKERS``, ...;
- ``FAKEBLOCK_CONFIG`` (the file), ``FAKEBLOCK_ONLY`` (``--only``), ``FAKEBLOCK_HOST`` (``--host``).

Lists are comma-separated (``FAKEBLOCK_DISPLAY_OUTPUTS=web,none``), booleans are
1/0/true/false/yes/no/on/off, and an empty value clears an optional setting.
:func:`environment_variables` lists every name read.
"""

from __future__ import annotations

import logging
import os
import socket
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from fakeblock.common.config import PipelineConfig
from fakeblock.common.deploy_schema import (BOUND_LINKS, CONFIG_VARIABLE, DEFAULT_HOST, DEFAULT_SUPERVISOR_PORT,
                                            HOST_VARIABLE, ONLY_VARIABLE, STAGE_CONFIGS, STAGE_NAMES, check_hosts,
                                            check_table, environment_overrides, environment_variables, sections,
                                            split_document, tcp, warn_unknown_variables)
from fakeblock.common.endpoints import DEFAULT_BASE_PORT, LINKS, Endpoints
from fakeblock.common.errors import UserError
from fakeblock.common.security import DEFAULT_CLIENT_KEY_NAME, SecurityConfig, check_bind_allowed

__all__ = ["HostPlan", "Site", "StagePlacement", "endpoints_for_stage", "environment_variables", "is_this_machine",
           "load_site", "parse_site", "plan_host"]
LOGGER = logging.getLogger(__name__)
# An environment variable replaces the file's value, so setting one of these drops the other.
EXCLUSIVE_KEYS = {"port": "ports", "ports": "port"}


@dataclass(frozen=True)
class StagePlacement:
    """Where one stage runs and listens, how many workers it has, and its config fields."""

    stage: str
    hosts: tuple[str, ...]
    bind: str | None
    ports: tuple[int, ...]
    workers: int
    options: Mapping[str, Any]

    def bind_endpoints(self) -> dict[str, str]:
        """Link -> address this stage listens on (empty for stages that only connect)."""
        listen_host = self.bind or self.hosts[0]
        return {link: tcp(listen_host, port) for link, port in zip(BOUND_LINKS.get(self.stage, ()), self.ports)}

    def connect_endpoints(self) -> dict[str, str]:
        """Link -> address other stages connect to."""
        return {link: tcp(self.hosts[0], port) for link, port in zip(BOUND_LINKS.get(self.stage, ()), self.ports)}


@dataclass(frozen=True)
class Site:
    """A validated deployment file (with environment overrides applied)."""

    source: str
    security: SecurityConfig
    stages: Mapping[str, StagePlacement]
    supervisor_port: int
    supervisor_bind: str | None

    def hosts(self) -> tuple[str, ...]:
        """Every host named by a stage, in pipeline order (one supervisor each)."""
        return tuple(dict.fromkeys(host for stage in STAGE_NAMES for host in self.stages[stage].hosts))

    def connect_endpoints(self, control: str, status: str) -> Endpoints:
        """Addresses to connect to; ``control`` and ``status`` are the local supervisor's."""
        links = {}
        for stage in STAGE_NAMES:
            links.update(self.stages[stage].connect_endpoints())
        return Endpoints(control=control, status=status, **links)

    def status_endpoints(self) -> dict[str, str]:
        """Host -> the status service ``fakeblock status`` asks (one per host's supervisor)."""
        return {host: tcp(host, self.supervisor_port) for host in self.hosts()}

    def with_security(self, keys_directory: str | None = None, insecure: bool = False) -> Site:
        """This site with command-line ``--keys``/``--insecure`` applied over the file and environment."""
        security = replace(self.security, keys_directory=keys_directory or self.security.keys_directory,
                           insecure=insecure or self.security.insecure)
        return replace(self, security=security)

    def stage_config(self, stage: str):
        """The stage's config dataclass built from the file (None for the queue)."""
        config_class = STAGE_CONFIGS.get(stage)
        return config_class(**self.stages[stage].options) if config_class else None


def _read_document(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"{path}: no such deployment file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read the deployment file: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML: {error}") from None


def load_site(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Site:
    """Read, override from the environment and validate a deployment file (``FAKEBLOCK_CONFIG`` if no path)."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_VARIABLE)
    if not path:
        raise UserError(f"no deployment file: pass --config site.toml or set {CONFIG_VARIABLE}")
    return parse_site(_read_document(Path(path).expanduser()), str(path), environ)


def parse_site(document: Mapping[str, Any], source: str = "site.toml",
               environ: Mapping[str, str] | None = None) -> Site:
    """Validate a parsed TOML document (``tomllib.loads`` output) into a :class:`Site`."""
    environ = os.environ if environ is None else environ
    warn_unknown_variables(environ)
    tables = split_document(document, source)
    values = {}
    for section, schema in sections().items():
        checked = check_table(tables.get(section, {}), schema, f"{source}: {'.'.join(section)}")
        overrides = environment_overrides(section, schema, environ)
        for key in overrides:
            checked.pop(EXCLUSIVE_KEYS.get(key, ""), None)
        values[section] = {**checked, **overrides}
    site_values, supervisor_values = values[("site",)], values[("supervisor",)]
    keys = site_values.get("keys")
    site = Site(source=source,
                security=SecurityConfig(keys_directory=str(Path(keys).expanduser()) if keys else None,
                                        insecure=site_values.get("insecure", False),
                                        client_key_name=site_values.get("client_key", DEFAULT_CLIENT_KEY_NAME)),
                stages={stage: _placement(stage, values[("stages", stage)], source) for stage in STAGE_NAMES},
                supervisor_port=supervisor_values.get("port", DEFAULT_SUPERVISOR_PORT),
                supervisor_bind=_supervisor_bind(supervisor_values.get("bind"), f"{source}: supervisor.bind"))
    _check_port_clashes(site)
    return site


def _supervisor_bind(bind: str | None, where: str) -> str | None:
    if bind is None:
        return None
    check_hosts((bind.strip("[]"),), where, single=True, wildcard=True)
    return bind.strip("[]")


def _placement(stage: str, values: dict[str, Any], source: str) -> StagePlacement:
    where = f"{source}: stages.{stage}"
    # Addresses are kept without IPv6 brackets; tcp() adds them back in endpoints.
    hosts = tuple(dict.fromkeys(host.strip("[]") for host in values.pop("host", (DEFAULT_HOST,))))
    check_hosts(hosts, f"{where}.host", single=stage in BOUND_LINKS)
    bind = values.pop("bind", None)
    if bind is not None:
        bind = bind.strip("[]")
        check_hosts((bind,), f"{where}.bind", single=True, wildcard=True)
    ports = _ports(stage, values.pop("port", None), values.pop("ports", None), where)
    return StagePlacement(stage, hosts, bind, ports, values.pop("workers", 1), values)


def _ports(stage: str, port: int | None, ports: tuple[int, ...] | None, where: str) -> tuple[int, ...]:
    links = BOUND_LINKS.get(stage, ())
    if port is not None and ports is not None:
        raise UserError(f"{where}: give port or ports, not both")
    if ports is not None and len(ports) != len(links):
        raise UserError(f"{where}.ports: expected {len(links)} ports ({', '.join(links)}), got {len(ports)}")
    if ports is None:
        # Defaults follow tcp_endpoints(): each link keeps its usual port.
        first = port if port is not None else (DEFAULT_BASE_PORT + LINKS.index(links[0]) if links else 0)
        ports = tuple(first + offset for offset in range(len(links)))
    for value in ports:
        if not 1 <= value <= 65535:
            raise UserError(f"{where}: port {value} is out of range (1 to 65535)")
    return ports


def _check_port_clashes(site: Site) -> None:
    """Two listeners on one host and port would fail at start; say so now, naming both."""
    for host in site.hosts():
        owners = {site.supervisor_port: "the supervisor's status service"}
        for stage in BOUND_LINKS:
            placement = site.stages[stage]
            if placement.hosts[0] != host:
                continue
            for link, port in zip(BOUND_LINKS[stage], placement.ports):
                if port in owners:
                    raise UserError(f"{site.source}: port {port} on {host} is used by both {owners[port]} "
                                    f"and {stage} ({link})")
                owners[port] = f"{stage} ({link})"


# ---------------------------------------------------------------------------------------
# This host's share
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HostPlan:
    """What one host's supervisor runs: stages, workers, addresses and security."""

    site: Site
    host: str
    stages: tuple[str, ...]
    endpoints: Endpoints
    binds: Mapping[str, str]
    status_bind: str
    workers: Mapping[str, int]

    @property
    def security(self) -> SecurityConfig:
        """The site's security settings."""
        return self.site.security

    def endpoints_for(self, stage: str) -> Endpoints:
        """The endpoints to give ``stage``: its own links at their bind address, the rest to connect."""
        return endpoints_for_stage(self.endpoints, self.binds, stage)

    def check_binds(self) -> None:
        """Refuse (or, with insecure, warn about) every non-loopback bind without keys."""
        for endpoint in (*self.binds.values(), self.status_bind):
            check_bind_allowed(endpoint, self.security)

    def pipeline_config(self, stats: str | None = None, show_status: bool = True) -> PipelineConfig:
        """A :class:`PipelineConfig` with this host's stage configs and worker counts."""
        configs = {stage: self.site.stage_config(stage) for stage in STAGE_CONFIGS}
        return PipelineConfig(endpoints=self.endpoints, **configs, detect_workers=self.workers.get("detect", 1),
                              classify_workers=self.workers.get("classify", 1), stats=stats,
                              show_status=show_status)


def endpoints_for_stage(endpoints: Endpoints, binds: Mapping[str, str], stage: str) -> Endpoints:
    """``endpoints`` with the links ``stage`` binds replaced by their bind addresses from ``binds``."""
    own = {link: binds[link] for link in BOUND_LINKS.get(stage, ()) if link in binds}
    return replace(endpoints, **own)


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
        stages = tuple(stage for stage in STAGE_NAMES if host in site.stages[stage].hosts)
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
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)}
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
    candidates = [name for name in site.stages[stages[0]].hosts
                  if all(name in site.stages[stage].hosts for stage in stages)]
    if not candidates:
        placed = "; ".join(f"{stage} on {', '.join(site.stages[stage].hosts)}" for stage in stages)
        raise UserError(f"{site.source} places these stages on different hosts ({placed}); "
                        f"run each host's stages there")
    if len(candidates) == 1:
        return candidates[0]
    local = [name for name in candidates if is_this_machine(name)]
    if len(local) == 1:
        return local[0]
    raise UserError(f"cannot tell which host this is: {', '.join(stages)} may run on {', '.join(candidates)}; "
                    f"pass --host HOST or set {HOST_VARIABLE}")


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
        if host not in site.stages[stage].hosts:
            raise UserError(f"{site.source} places {stage} on {', '.join(site.stages[stage].hosts)}, not on {host}; "
                            f"run it there or change stages.{stage}.host")
    run_directory = Path(run_directory)
    endpoints = site.connect_endpoints(f"ipc://{run_directory / 'control'}", f"ipc://{run_directory / 'status'}")
    binds = {link: address for stage in stages for link, address in site.stages[stage].bind_endpoints().items()}
    LOGGER.debug("%s: this host is %s and runs %s", site.source, host, ", ".join(stages))
    return HostPlan(site=site, host=host, stages=stages, endpoints=endpoints, binds=binds,
                    status_bind=tcp(site.supervisor_bind or host, site.supervisor_port),
                    workers={stage: site.stages[stage].workers for stage in stages})


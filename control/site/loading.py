"""The deployment file: where each stage listens and how many workers it runs, on every host.

Every host runs the same TOML file and picks its share with ``--only`` (or ``--host``)::

    [site]
    keys = "/etc/fakeblock/keys"   # CurveZMQ keys (see fakeblock.common.security.access); optional
    insecure = false               # allow non-loopback binds without keys (warns every start)
    client_key = "client"          # which DIR/<name>.key_secret this host connects with

    [supervisor]                   # each host's supervisor answers `fakeblock status` here
    port = 5557                    # default 5557
    bind = "0.0.0.0"               # optional; default: the host it runs on
    metrics_port = 9108            # optional, also metrics_host and metrics_token_file (docs/metrics-and-health.md)

    [stages.capture]               # capture, detect, queue, classify, display
    host = "10.0.0.5"              # where it runs; others connect here (default 127.0.0.1)
    bind = "0.0.0.0"               # where it listens (default: host)
    port = 5550                    # first port; a stage with two links uses port and port + 1
    source = "0"                   # ... any field of the stage's config dataclass

Several cameras: write ``[[stages.capture]]`` once per camera, each with its own ``host``,
``port``, ``source`` and (required then) ``stream`` name.  Every capture listens on its own
frames port; detect workers connect to all of them, and the display ends only when every
stream has ended.  ``FAKEBLOCK_CAPTURE_*`` variables are refused then: they could not say
which camera they mean.

Per stage: capture, queue and display listen (``host``, ``bind``, ``port`` or ``ports`` =
one per link); detect and classify only connect, so they take ``host`` as one address or a
list of hosts that each run ``workers`` processes.  Other keys are the fields of
``CaptureConfig``, ``DetectConfig``, ``ClassifyConfig`` and ``DisplayConfig`` (except those
``fakeblock up`` derives).  Default ports follow ``tcp_endpoints``: frames 5550, faces
5551-5552, results and display frames 5553-5554.  Relative paths are relative to the
working directory, as on the command line.

Control and status links stay on each host (``ipc://`` in the run directory): each
supervisor stops and watches only its own stages.  To see the whole site, each supervisor
also binds a small *status service* at ``tcp://<host>:<supervisor.port>``;
``fakeblock status --config site.toml`` asks every host in :meth:`Site.status_endpoints`.

Environment variables override the file (for containers): see
:mod:`fakeblock.control.site.schema`.  :mod:`fakeblock.control.site.plan`
works out each host's share.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from fakeblock.common.config import MAX_PORT, SupervisorConfig
from fakeblock.common.endpoints import DEFAULT_BASE_PORT, DEFAULT_HOST, LINKS, Endpoints
from fakeblock.common.errors import UserError
from fakeblock.common.security.access import SecurityConfig
from fakeblock.common.security.keys import DEFAULT_CLIENT_KEY_NAME
from fakeblock.control.site.schema import (
    BOUND_LINKS,
    CONFIG_VARIABLE,
    DEFAULT_SUPERVISOR_PORT,
    STAGE_CONFIGS,
    STAGE_NAMES,
    SUPERVISOR_SERVICE_FIELDS,
    check_hosts,
    check_table,
    environment_name,
    environment_overrides,
    sections,
    split_document,
    tcp,
    warn_unknown_variables,
)

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
        return {link: tcp(listen_host, port) for link, port in zip(BOUND_LINKS.get(self.stage, ()), self.ports,
                                                                              strict=True)}

    def connect_endpoints(self) -> dict[str, str]:
        """Link -> address other stages connect to."""
        return {link: tcp(self.hosts[0], port) for link, port in zip(BOUND_LINKS.get(self.stage, ()), self.ports,
                                                                              strict=True)}


@dataclass(frozen=True)
class Site:
    """A validated deployment file (with environment overrides applied).

    ``captures`` lists every capture stage (``[[stages.capture]]`` may appear several
    times, one per camera); ``stages["capture"]`` is the first of them; ``supervisor`` the metrics settings.
    """

    source: str
    security: SecurityConfig
    stages: Mapping[str, StagePlacement]
    supervisor_port: int
    supervisor_bind: str | None
    captures: tuple[StagePlacement, ...] = ()
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)

    def placements(self, stage: str) -> tuple[StagePlacement, ...]:
        """Every placement of ``stage`` (several only for capture)."""
        return self.captures if stage == "capture" and self.captures else (self.stages[stage],)

    def hosts_of(self, stage: str) -> tuple[str, ...]:
        """Every host ``stage`` runs on."""
        return tuple(dict.fromkeys(host for placement in self.placements(stage) for host in placement.hosts))

    def hosts(self) -> tuple[str, ...]:
        """Every host named by a stage, in pipeline order (one supervisor each)."""
        return tuple(dict.fromkeys(host for stage in STAGE_NAMES for host in self.hosts_of(stage)))

    def connect_endpoints(self, control: str, status: str) -> Endpoints:
        """Addresses to connect to; ``control`` and ``status`` are the local supervisor's.

        Detect workers connect to the first capture's ``frames`` and to every other
        capture's, in ``extra_frames``.
        """
        links = {}
        for stage in STAGE_NAMES:
            links.update(self.stages[stage].connect_endpoints())
        extra_frames = tuple(placement.connect_endpoints()["frames"] for placement in self.placements("capture")[1:])
        return Endpoints.from_links({**links, "control": control, "status": status}, extra_frames)

    def status_endpoints(self) -> dict[str, str]:
        """Host -> the status service ``fakeblock status`` asks (one per host's supervisor)."""
        return {host: tcp(host, self.supervisor_port) for host in self.hosts()}

    def with_security(self, keys_directory: str | None = None, insecure: bool = False) -> Site:
        """This site with command-line ``--keys``/``--insecure`` applied over the file and environment."""
        security = replace(self.security, keys_directory=keys_directory or self.security.keys_directory,
                           insecure=insecure or self.security.insecure)
        return replace(self, security=security)

    def stage_config(self, stage: str, placement: StagePlacement | None = None):
        """The stage's config dataclass built from the file (None for the queue)."""
        config_class = STAGE_CONFIGS.get(stage)
        return config_class(**(placement or self.stages[stage]).options) if config_class else None


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
    values: dict[tuple[str, ...], Any] = {}  # a table's checked values, or a list of them for capture
    for section, schema in sections().items():
        where = f"{source}: {'.'.join(section)}"
        section_tables = tables.get(section, {})
        if isinstance(section_tables, list):
            values[section] = _several_tables(section_tables, schema, where, section, environ)
        else:
            values[section] = _one_table(section_tables, schema, where, section, environ)
    site_values, supervisor_values = values[("site",)], values[("supervisor",)]
    keys = site_values.get("keys")
    capture_tables = values[("stages", "capture")]
    captures = tuple(_placement("capture", capture, source, f"[{index}]" if len(capture_tables) > 1 else "")
                     for index, capture in enumerate(capture_tables))
    _check_streams(captures, source)
    site = Site(source=source,
                security=SecurityConfig(keys_directory=str(Path(keys).expanduser()) if keys else None,
                                        insecure=site_values.get("insecure", False),
                                        client_key_name=site_values.get("client_key", DEFAULT_CLIENT_KEY_NAME)),
                stages={"capture": captures[0], **{stage: _placement(stage, values[("stages", stage)], source)
                                                   for stage in STAGE_NAMES if stage != "capture"}},
                supervisor_port=supervisor_values.get("port", DEFAULT_SUPERVISOR_PORT),
                supervisor_bind=_supervisor_bind(supervisor_values.get("bind"), f"{source}: supervisor.bind"),
                captures=captures, supervisor=SupervisorConfig(**{key: value for key, value in supervisor_values.items()
                                                                  if key not in SUPERVISOR_SERVICE_FIELDS}))
    _check_port_clashes(site)
    return site


def _one_table(table: Mapping[str, Any], schema, where: str, section, environ) -> Any:
    """Checked values with environment overrides on top (a list of one for capture)."""
    checked = check_table(table, schema, where)
    overrides = environment_overrides(section, schema, environ)
    for key in overrides:
        checked.pop(EXCLUSIVE_KEYS.get(key, ""), None)
    merged = {**checked, **overrides}
    return [merged] if section == ("stages", "capture") else merged


def _several_tables(tables: list, schema, where: str, section, environ) -> list[dict]:
    """Each ``[[stages.capture]]`` checked; one environment variable cannot say which camera it means."""
    overrides = environment_overrides(section, schema, environ)
    if overrides and len(tables) > 1:
        name = environment_name(section, next(iter(overrides)))
        raise UserError(f"environment {name}: the file lists {len(tables)} capture stages, so a variable cannot "
                        f"say which one it changes; set it in the file")
    return [_one_table(table, schema, f"{where}[{index}]", section, environ)[0]
            for index, table in enumerate(tables)]


def _check_streams(captures: tuple[StagePlacement, ...], source: str) -> None:
    """Several cameras need names of their own: results and the display tell streams apart by them."""
    if len(captures) < 2:
        return
    streams = [placement.options.get("stream") for placement in captures]
    for index, stream in enumerate(streams):
        if not stream:
            raise UserError(f"{source}: stages.capture[{index}] needs a stream name: with several capture "
                            f"stages each names its stream (stream = \"door\")")
        if stream in streams[:index]:
            raise UserError(f"{source}: stream {stream!r} is named by two capture stages; names must differ")


def _supervisor_bind(bind: str | None, where: str) -> str | None:
    if bind is None:
        return None
    check_hosts((bind.strip("[]"),), where, single=True, wildcard=True)
    return bind.strip("[]")


def _placement(stage: str, values: dict[str, Any], source: str, index: str = "") -> StagePlacement:
    where = f"{source}: stages.{stage}{index}"
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
        if not 1 <= value <= MAX_PORT:
            raise UserError(f"{where}: port {value} is out of range (1 to {MAX_PORT})")
    return ports


def _check_port_clashes(site: Site) -> None:
    """Two listeners on one host and port would fail at start; say so now, naming both."""
    for host in site.hosts():
        owners = {site.supervisor_port: "the supervisor's status service"}
        for stage in BOUND_LINKS:
            placements = site.placements(stage)
            for index, placement in enumerate(placements):
                if placement.hosts[0] != host:
                    continue
                name = f"{stage}[{index}]" if len(placements) > 1 else stage
                for link, port in zip(BOUND_LINKS[stage], placement.ports, strict=True):
                    if port in owners:
                        raise UserError(f"{site.source}: port {port} on {host} is used by both {owners[port]} "
                                        f"and {name} ({link})")
                    owners[port] = f"{name} ({link})"

"""What ``fakeblock up`` runs on this host, from its options, a site file and the environment.

Three ways to start:

- plain ``fakeblock up``: every stage here, ``ipc://`` sockets in a private run directory,
  nothing listening on the network (the default, unchanged);
- ``fakeblock up --only detect,classify`` without a file: just those stages, their data
  links ``ipc://`` sockets in this user's private folder (``endpoints.local_site_directory``,
  mode 0700, refused if it is another user's or open to others), so another
  ``fakeblock up --only ...`` of the same user on this machine runs the rest and no other
  user can connect.  With ``--keys`` the two runs talk over the default loopback TCP ports
  (5550-5554) with CurveZMQ instead; with ``--insecure`` and no keys over those ports
  without any (the preflight warns that every local user can then read and inject);
- ``fakeblock up --config site.toml [--only ...] [--host ...]``: this host's share of the
  site file (see :mod:`fakeblock.control.site.loading`).

Precedence: command-line options given explicitly win over environment variables, which
win over the file.  Control and status links are always ``ipc://`` in the run directory.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from typing import Any, Mapping

from fakeblock.common.config import PipelineConfig
from fakeblock.common.endpoints import ipc_endpoints, local_site_directory, local_site_endpoints, make_run_directory
from fakeblock.common.errors import UserError
from fakeblock.common.security.access import SecurityConfig, make_private_folder
from fakeblock.control.cli.up_options import STAGE_OPTIONS
from fakeblock.control.site.loading import Site, load_site, parse_site
from fakeblock.control.site.plan import plan_host
from fakeblock.control.site.schema import BOUND_LINKS, CONFIG_VARIABLE, HOST_VARIABLE, ONLY_VARIABLE

DEFAULT_SITE_NAME = "the default one-machine site"


@dataclass(frozen=True)
class Deployment:
    """Where this ``fakeblock up`` fits in a site: ``--config``, ``--only``, ``--host``, ``--keys``, ``--insecure``."""

    config_path: str | None = None
    only: str | None = None
    host: str | None = None
    keys_directory: str | None = None
    insecure: bool = False

    def uses_site(self, environ: Mapping[str, str]) -> bool:
        """True unless this is a plain single-host run (no file, no subset, no host given anywhere)."""
        return bool(self.config_path or self.only or self.host
                    or any(environ.get(name) for name in (CONFIG_VARIABLE, ONLY_VARIABLE, HOST_VARIABLE)))


def build_config(deployment: Deployment, options: Mapping[str, Any], stats: str | None = None,
                 show_status: bool = True, environ: Mapping[str, str] | None = None) -> PipelineConfig:
    """The :class:`PipelineConfig` this host runs, with ``options`` (option name -> value) applied last."""
    environ = os.environ if environ is None else environ
    run_directory = make_run_directory()
    try:
        if deployment.uses_site(environ):
            config = _site_config(deployment, run_directory, environ)
        else:
            security = SecurityConfig(keys_directory=deployment.keys_directory, insecure=deployment.insecure)
            config = PipelineConfig(endpoints=ipc_endpoints(run_directory), security=security)
        return replace(apply_options(config, options), stats=stats, show_status=show_status)
    except BaseException:
        shutil.rmtree(run_directory, ignore_errors=True)
        raise


def _site_config(deployment: Deployment, run_directory, environ: Mapping[str, str]) -> PipelineConfig:
    with_file = bool(deployment.config_path or environ.get(CONFIG_VARIABLE))
    site = load_site(deployment.config_path, environ) if with_file else parse_site({}, DEFAULT_SITE_NAME, environ)
    site = site.with_security(deployment.keys_directory, deployment.insecure)
    plan = plan_host(site, run_directory, only=deployment.only, host=deployment.host, environ=environ)
    config = plan.pipeline_config()
    if with_file:
        return config
    # Without a file nobody could name this host's status port (`fakeblock status` finds it
    # locally), and "127.0.0.1" says less about the host than its name.
    config = replace(config, status_service=None, host=None)
    if site.security.keys_directory or site.security.insecure:
        return config  # loopback TCP: with CURVE, or (insecure) open to every local user
    _refuse_listening_variables(site, environ)
    site_directory = make_private_folder(local_site_directory(environ))
    # Every data link is bound where its peers connect, so no stage needs a bind address of its own.
    return replace(config, endpoints=local_site_endpoints(site_directory, run_directory), binds={})


def _listening_places(site: Site) -> list[tuple]:
    """Host, bind address and ports of every stage that listens."""
    return [(placement.hosts, placement.bind, placement.ports) for stage in BOUND_LINKS
            for placement in site.placements(stage)]


def _refuse_listening_variables(site: Site, environ: Mapping[str, str]) -> None:
    """Without a file and keys there are no TCP ports to move: say so rather than ignore the variables."""
    if _listening_places(site) != _listening_places(parse_site({}, DEFAULT_SITE_NAME, {})):
        raise UserError("the environment sets where stages listen (FAKEBLOCK_<STAGE>_HOST, _BIND, _PORT or _PORTS), "
                        "but without a site file the stages talk over private Unix sockets; pass --config site.toml, "
                        "or --keys DIR (or --insecure) for the loopback TCP ports")


def apply_options(config: PipelineConfig, options: Mapping[str, Any]) -> PipelineConfig:
    """``config`` with each option's value put in its place (see ``STAGE_OPTIONS``)."""
    changes: dict[str, dict[str, Any]] = {}
    for name, value in options.items():
        section, field_name = STAGE_OPTIONS[name]
        changes.setdefault(section, {})[field_name] = value
    if changes.get("capture") and len(config.captures) > 1:
        option = next(name for name in options if STAGE_OPTIONS[name][0] == "capture")
        raise UserError(f"--{option.replace('_', '-')} cannot choose among the {len(config.captures)} capture "
                        f"stages run here; set it for each capture in the site file")
    config = replace(config, **changes.pop("pipeline", {}))
    captures = tuple(replace(slot, config=replace(slot.config, **changes.get("capture", {})))
                     for slot in config.captures)
    sections = {section: replace(getattr(config, section), **values) for section, values in changes.items()}
    return replace(config, **sections, captures=captures)

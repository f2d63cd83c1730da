"""docker-compose.yml and the Dockerfile, checked against the code without a Docker engine.

Every fakeblock service's command must parse as a ``fakeblock`` command line, every
variable it sets must be one fakeblock reads, and its environment plus the mounted site
file must plan that container's share of the site (stages, host, listening addresses
allowed by the bind policy).  Every mounted host path exists in the repository or is an
output folder the README's docker-compose section tells the user to make.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import typer.main

from fakeblock.common.config import SupervisorConfig
from fakeblock.common.errors import UserError
from fakeblock.common.security.access import check_bind_allowed
from fakeblock.common.security.keys import METRICS_TOKEN_NAME
from fakeblock.common.wire import StatusReport
from fakeblock.control.cli.app import app
from fakeblock.control.metrics.families import LOOP_SILENT_AFTER_S, Snapshot
from fakeblock.control.metrics.http_server import HEALTH_PATH, MetricsServer
from fakeblock.control.metrics.token import check_metrics_settings
from fakeblock.control.site.loading import load_site
from fakeblock.control.site.plan import plan_host
from fakeblock.control.site.schema import CONFIG_VARIABLE, STAGE_NAMES, environment_variables

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra: pip install -e .[test]")

REPOSITORY = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPOSITORY / "docker-compose.yml"
DOCKERFILE = REPOSITORY / "Dockerfile"
# Host folders the user makes (keys) or Docker creates (results); the README names both.
USER_FOLDERS = ("./keys", "./results")
SCALABLE_SERVICES = ("detect", "classify")
WEB_FORWARDER = "web"
OPENCV_SYSTEM_LIBRARIES = ("libgl1", "libglib2.0-0")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def fakeblock_services() -> dict[str, dict]:
    """The services that run the image's ``fakeblock`` entry point (all but the web forwarder)."""
    return {name: service for name, service in compose()["services"].items() if "entrypoint" not in service}


def dockerfile_instruction(name: str) -> list[str]:
    """Every argument of the Dockerfile's instructions called ``name`` (FROM, ENTRYPOINT, ...)."""
    # A trailing backslash continues an instruction on the next line.
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [name]]


def parse_command_line(arguments: list[str]):
    """Parse ``fakeblock ARGUMENTS`` as the CLI would, without running the command."""
    # The app's callback takes no options, so the first argument names the command.
    commands = typer.main.get_command(app).commands
    assert arguments[0] in commands, f"fakeblock has no command {arguments[0]!r}"
    return commands[arguments[0]].make_context(arguments[0], list(arguments[1:]))


def mounts(service: dict) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        host_path, container_path = volume.split(":")[:2]
        found[container_path] = host_path
    return found


def container_environment(service: dict) -> dict[str, str]:
    """The service's environment with the site file's container path mapped back into the repository."""
    environ = {name: str(value) for name, value in service["environment"].items()}
    environ[CONFIG_VARIABLE] = str(REPOSITORY / mounts(service)[environ[CONFIG_VARIABLE]])
    return environ


def test_the_image_runs_fakeblock_from_python_slim_with_opencv_libraries():
    assert dockerfile_instruction("FROM") == ["python:3.11-slim"]
    entrypoint = json.loads(dockerfile_instruction("ENTRYPOINT")[-1])
    scripts = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["fakeblock"] and "fakeblock" in scripts
    installs = " ".join(dockerfile_instruction("RUN"))
    assert all(library in installs.split() for library in OPENCV_SYSTEM_LIBRARIES), installs
    assert re.search(r"pip install [^&]*/src", installs), "the image installs the package with pip"


def test_secrets_and_local_state_stay_out_of_the_image():
    ignored = (REPOSITORY / ".dockerignore").read_text().split()
    assert {"keys", ".venv", ".git"} <= set(ignored)


def test_there_is_one_service_per_stage_and_each_command_is_a_valid_fakeblock_command():
    services = fakeblock_services()
    assert set(services) == set(STAGE_NAMES)
    for name, service in services.items():
        context = parse_command_line(service["command"])
        assert context.info_name == "up", name
        assert service["environment"]["FAKEBLOCK_ONLY"] == name


def test_every_variable_set_is_one_fakeblock_reads():
    known = set(environment_variables())
    for name, service in fakeblock_services().items():
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"


def test_each_container_plans_its_own_stage_and_may_listen_where_it_does(tmp_path):
    for name, service in fakeblock_services().items():
        environ = container_environment(service)
        site = load_site(environ=environ)
        plan = plan_host(site, tmp_path, environ=environ)
        assert plan.stages == (name,) and plan.host == name
        assert site.security.keys_directory in mounts(service), "the site's key folder is mounted"
        for endpoint in (*plan.binds.values(), plan.status_bind):
            check_bind_allowed(endpoint, site.security)  # raises without keys for 0.0.0.0


def test_every_mounted_path_exists_or_the_readme_says_how_to_make_it():
    section = (REPOSITORY / "docs" / "docker-compose.md").read_text()
    assert METRICS_TOKEN_NAME in section, "docs/docker-compose.md does not say where the metrics token comes from"
    for name, service in compose()["services"].items():
        for host_path in mounts(service).values():
            if host_path in USER_FOLDERS:
                assert host_path.removeprefix("./") in section, f"docs/docker-compose.md does not mention {host_path}"
            else:
                assert (REPOSITORY / host_path).is_file(), f"{name} mounts {host_path}, which is not in the repository"
        assert all(volume.endswith(":ro") for volume in service.get("volumes", [])
                   if volume.startswith("./keys")), "keys are mounted read-only"


def test_detect_and_classify_can_be_scaled():
    services = compose()["services"]
    for name in SCALABLE_SERVICES:
        # A fixed container name or host port would make the second replica fail to start.
        assert "container_name" not in services[name] and "ports" not in services[name], name


def test_the_web_view_is_published_on_the_hosts_loopback_and_forwarded_to_the_displays():
    services = compose()["services"]
    forwarder, display = services[WEB_FORWARDER], services["display"]
    site = load_site(environ=container_environment(display))
    web_port = site.stage_config("display").web_port
    assert forwarder["network_mode"] == "service:display"
    assert forwarder["entrypoint"][-1] == f"TCP:127.0.0.1:{web_port}"
    listen_port = re.search(r"TCP-LISTEN:(\d+)", " ".join(forwarder["entrypoint"])).group(1)
    assert display["ports"] == [f"127.0.0.1:{web_port}:{listen_port}"]
    assert "web" in site.stage_config("display").outputs


def healthcheck_code(service: dict) -> str:
    """The Python a service's healthcheck runs (the image has no curl)."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 4, test
    return test[3]


def test_every_container_serves_metrics_with_a_token_and_its_healthcheck_asks_healthz():
    for name, service in fakeblock_services().items():
        site = load_site(environ=container_environment(service))
        metrics = site.supervisor
        assert metrics.metrics_port is not None, f"{name} serves no metrics"
        assert service["expose"] == [str(metrics.metrics_port)], name
        code = healthcheck_code(service)
        assert f"'127.0.0.1', {metrics.metrics_port}," in code and f"'{HEALTH_PATH}'" in code, code
        # Every interface of the container, so the token file is what keeps /metrics closed.
        assert metrics.metrics_host == "0.0.0.0"
        with pytest.raises(UserError, match="without a token"):
            check_metrics_settings(replace(metrics, metrics_token_file=None))
        token_path = Path(metrics.metrics_token_file)
        assert token_path.name == METRICS_TOKEN_NAME and str(token_path.parent) in mounts(service), \
            f"{name}: the token is the one `fakeblock keys generate` writes in the mounted key folder"
        assert service["healthcheck"]["start_period"], "the model loads before the first heartbeat"


def run_healthcheck(code: str, port: int) -> int:
    """The healthcheck's exit code against ``port`` (its own port swapped for the test's)."""
    local = code.replace(", 9108,", f", {port},")
    assert local != code
    return subprocess.run([sys.executable, "-c", local], capture_output=True, timeout=30).returncode


def test_the_healthcheck_passes_only_while_the_supervisor_is_healthy():
    code = healthcheck_code(fakeblock_services()["detect"])
    server = MetricsServer.start(SupervisorConfig(metrics_port=0))
    assert server is not None
    try:
        server.snapshot = Snapshot(StatusReport("detect", 1, "running", 1.0), time.monotonic())
        assert run_healthcheck(code, server.port) == 0
        server.snapshot = Snapshot(StatusReport("detect", 1, "running", 1.0),
                                   time.monotonic() - LOOP_SILENT_AFTER_S - 1)
        assert run_healthcheck(code, server.port) == 1
        port = server.port
    finally:
        server.close()
    assert run_healthcheck(code, port) != 0  # nothing listens


def test_the_image_runs_unprivileged_and_compose_runs_its_services_as_root():
    # Kubernetes runs the image's own user; compose's bind-mounted key folder (made with the
    # image, as root) is readable only by root, and fakeblock accepts only key files of its
    # own user or root.
    (user,) = dockerfile_instruction("USER")
    assert not user.startswith(("0", "root"))
    for name, service in fakeblock_services().items():
        assert service["user"] == "root", name
    assert "user" not in compose()["services"][WEB_FORWARDER], "socat needs no privileges"

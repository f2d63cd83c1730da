"""The pods' probes, Prometheus annotations and metrics token against the metrics code.

The supervisor serves ``/metrics``, ``/healthz`` and ``/readyz`` on ``[supervisor]
metrics_port`` (:mod:`fakeblock.common.control.metrics_http`); the probes need no token,
``/metrics`` the bearer token in ``metrics_token_file``, which the pods mount from the
Secret fakeblock-metrics-token that README makes from ``keys/metrics.token``.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

from fakeblock.common.control.site_schema import WILDCARD_HOSTS
from fakeblock.common.keys import generate_keys
from tests.manifests import KUSTOMIZATIONS, README_FOLDER, assemble, pods, readme_secret, site_text

TOKEN_SECRET = "fakeblock-metrics-token"
METRICS_MODULE = "fakeblock.common.control.metrics_http"


@pytest.fixture
def metrics_http():
    """The metrics server's constants (imported per test: a missing module fails these tests, not the run)."""
    return importlib.import_module(METRICS_MODULE)


@pytest.fixture(params=list(KUSTOMIZATIONS))
def resources(request) -> list[dict]:
    return assemble(KUSTOMIZATIONS[request.param])


def supervisor_table(resources: list[dict]) -> dict:
    """The ``[supervisor]`` table of the ConfigMap's site file."""
    return tomllib.loads(site_text(resources))["supervisor"]


def test_probes_ask_the_supervisors_health_and_ready_paths_on_its_metrics_port(resources, metrics_http):
    supervisor = supervisor_table(resources)
    assert supervisor["metrics_port"] == metrics_http.DEFAULT_METRICS_PORT
    probes = {"startupProbe": metrics_http.HEALTH_PATH, "livenessProbe": metrics_http.HEALTH_PATH,
              "readinessProbe": metrics_http.READY_PATH}
    assert supervisor["metrics_host"] in WILDCARD_HOSTS, "the kubelet and Prometheus reach the pod's address"
    for name, pod in pods(resources).items():
        for probe, path in probes.items():
            request = pod.container[probe]["httpGet"]
            assert request["path"] == path, f"{name} {probe}"
            assert pod.container_ports()[request["port"]] == supervisor["metrics_port"], f"{name} {probe}"


def test_prometheus_annotations_name_the_metrics_port_and_path(resources, metrics_http):
    supervisor = supervisor_table(resources)
    for name, pod in pods(resources).items():
        annotations = pod.deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(supervisor["metrics_port"]),
                               "prometheus.io/path": metrics_http.METRICS_PATH}, name


def test_the_metrics_token_file_is_the_token_readme_puts_in_the_secret(resources, tmp_path):
    token_file = supervisor_table(resources)["metrics_token_file"]
    generate_keys(tmp_path / README_FOLDER)
    (token_key, token_path), = readme_secret(TOKEN_SECRET).items()
    assert (tmp_path / token_path).is_file(), f"`fakeblock keys generate` writes no {token_path}"
    for name, pod in pods(resources).items():
        mount = pod.mount_of(token_file)
        secret = pod.volume(mount["name"])["secret"]
        assert mount.get("readOnly") and secret["secretName"] == TOKEN_SECRET, name
        # Group-readable for the pod's fsGroup; never for others.
        assert secret["defaultMode"] & 0o007 == 0 and "fsGroup" in pod.spec["securityContext"], name
        items = {item["path"]: item["key"] for item in secret["items"]}
        assert items == {str(Path(token_file).relative_to(mount["mountPath"])): token_key}, name

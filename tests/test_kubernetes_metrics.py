"""The pods' probes and Prometheus annotations against the metrics code.

The supervisor serves ``/metrics``, ``/healthz`` and ``/readyz`` on ``[supervisor]
metrics_port`` (:mod:`fakeblock.control.metrics.http_server`); the probes need no token.
The token file itself: tests/test_kubernetes_secrets.py.
"""

from __future__ import annotations

import importlib
import tomllib

import pytest

from fakeblock.control.site.schema import WILDCARD_HOSTS
from tests.manifests import KUSTOMIZATIONS, assemble, pods, site_text

METRICS_MODULE = "fakeblock.control.metrics.http_server"


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

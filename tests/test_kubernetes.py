"""deploy/kubernetes, checked against the Kubernetes API schema and against the code, without a cluster.

Every manifest, and kustomize's output of the base and of the two-cameras overlay, must
be valid against the API schema of Kubernetes 1.30 and of the newest version
kubernetes-validate knows, strictly (an unknown field fails).  Each pod's arguments must
parse as ``fakeblock up`` and plan exactly its stage from the site file in the ConfigMap;
every address the site names must be a Service that leads to a container port where the
stage that binds it listens; probes and metrics must match the code.  The checks run on
the files put together here (:func:`tests.manifests.assemble`) and, when kubectl is
installed, on ``kubectl kustomize``'s output as well.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from fakeblock.common.security.access import check_bind_allowed, is_loopback_host
from fakeblock.common.stages import STAGES
from fakeblock.control.site.loading import load_site
from fakeblock.control.site.plan import plan_host
from fakeblock.control.site.schema import CONFIG_VARIABLE, STAGE_NAMES, WILDCARD_HOSTS
from tests.manifests import (
    BASE,
    KUSTOMIZATIONS,
    TWO_CAMERAS,
    Pod,
    assemble,
    kubectl,
    load_documents,
    manifest_files,
    of_kind,
    pods,
    readme_section,
    render,
    selects,
    site_text,
)

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="in the test extra: pip install -e .[test]")

OLDEST_VERSION = "1.30.0"  # the oldest Kubernetes these manifests are for
NAMESPACE = "fakeblock"
SCALABLE = tuple(spec.name for spec in STAGES if spec.workers_field)  # detect, classify
SOURCES = ("files", "kubectl")


def resources_of(kustomization: str, source: str) -> list[dict]:
    """A kustomization's resources, put together here or rendered by kubectl (skipped without it)."""
    if source == "files":
        return assemble(KUSTOMIZATIONS[kustomization])
    if kubectl() is None:
        pytest.skip("kubectl is not installed")
    return render(KUSTOMIZATIONS[kustomization])


@pytest.fixture(params=[(name, source) for name in KUSTOMIZATIONS for source in SOURCES],
                ids=lambda param: "-".join(param))
def resources(request) -> list[dict]:
    """Every kustomization's resources, from the files and from kubectl."""
    return resources_of(*request.param)


def write_site(resources: list[dict], folder: Path) -> Path:
    """The ConfigMap's site file, written where the loader can read it."""
    path = folder / "site.toml"
    path.write_text(site_text(resources))
    return path


def plan_of(pod: Pod, site_path: Path, run_directory: Path):
    """(site, plan) of a pod: its ``fakeblock up`` arguments and environment over the ConfigMap's site file."""
    params = pod.command().params
    config_mount = pod.mount_of(str(params["config"]))
    assert config_mount.get("readOnly") and "configMap" in pod.volume(config_mount["name"])
    environ = {variable["name"]: variable["value"] for variable in pod.container.get("env", [])}
    environ[CONFIG_VARIABLE] = str(site_path)
    site = load_site(site_path, environ=environ)
    return site, plan_host(site, run_directory, only=params["only"], host=params["host"], environ=environ)


def host_and_port(endpoint: str) -> tuple[str, int]:
    """``tcp://host:port`` -> (host, port)."""
    assert endpoint.startswith("tcp://"), endpoint
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    return host.strip("[]"), int(port)


def service_target(resources: list[dict], host: str, port: int) -> tuple[Pod, int]:
    """The pod behind Service ``host``'s ``port`` and the container port it leads to."""
    services = of_kind(resources, "Service")
    assert host in services, f"no Service {host}: pods could not reach that host"
    spec = services[host]["spec"]
    (pod,) = [pod for pod in pods(resources).values() if selects(spec["selector"], pod.labels)]
    (service_port,) = [entry for entry in spec["ports"] if entry["port"] == port] or [None]
    assert service_port is not None, f"Service {host} has no port {port}"
    target = service_port.get("targetPort", port)
    return pod, pod.container_ports()[target] if isinstance(target, str) else target


# ---- the API schema ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [OLDEST_VERSION, kubernetes_validate.latest_version()])
def test_every_manifest_file_is_valid_against_the_kubernetes_api_strictly(version):
    files = manifest_files()
    assert {path.parent for path in files} == {BASE, TWO_CAMERAS}
    for path in files:
        for resource in load_documents(path.read_text()):
            kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("version", [OLDEST_VERSION, kubernetes_validate.latest_version()])
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kustomize_renders_valid_manifests_in_the_pipelines_namespace(kustomization, version):
    rendered = resources_of(kustomization, "kubectl")
    for resource in rendered:
        kubernetes_validate.validate(resource, version, strict=True)
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") == NAMESPACE, resource["metadata"]["name"]
    assert len(pods(rendered)) == len(pods(assemble(KUSTOMIZATIONS[kustomization])))
    # kustomize names the generated ConfigMap after its content; every pod must mount that name.
    (config_map,) = [name for name in of_kind(rendered, "ConfigMap")]
    for pod in pods(rendered).values():
        assert pod.volume("site")["configMap"]["name"] == config_map


def test_the_validation_refuses_a_misspelled_field():
    # Guards the guard: strict validation is what catches a typo that kubectl would drop.
    (deployment, _service) = load_documents((BASE / "detect.yaml").read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


# ---- the pods against the code ----------------------------------------------------------------

def test_each_pod_runs_one_stage_of_the_site_and_every_stage_runs(resources, tmp_path):
    site_path = write_site(resources, tmp_path)
    planned = {}
    for name, pod in pods(resources).items():
        site, plan = plan_of(pod, site_path, tmp_path)
        assert plan.host == name, f"{name} runs as host {plan.host}; its Service is {name}"
        assert len(plan.stages) == 1 and pod.command().params["status"] is False, name
        planned[name] = plan.stages[0]
    assert set(planned.values()) == set(STAGE_NAMES)
    # Several cameras: one capture pod per [[stages.capture]], each on its own host.
    assert sorted(name for name, stage in planned.items() if stage == "capture") == \
        sorted(placement.hosts[0] for placement in site.placements("capture"))


def test_every_host_of_the_site_is_a_service(resources, tmp_path):
    site = load_site(write_site(resources, tmp_path), environ={})
    services = of_kind(resources, "Service")
    for host in site.hosts():
        assert host in services, f"the site names host {host}, which is no Service"
    for stage in STAGE_NAMES:
        assert len(site.hosts_of(stage)) == len(site.placements(stage)), "one Service per stage (or camera)"


def test_every_listening_port_is_a_container_port_behind_the_pods_own_service(resources, tmp_path):
    site_path = write_site(resources, tmp_path)
    for name, pod in pods(resources).items():
        site, plan = plan_of(pod, site_path, tmp_path)
        plan.check_binds()  # non-loopback binds are allowed: the site has keys
        assert site.security.keys_directory, "the stages listen on the pod network, which needs keys"
        listening = [*plan.binds.values(), *(slot.frames_bind for slot in plan.capture_slots()), plan.status_bind]
        for endpoint in listening:
            bind_host, port = host_and_port(endpoint)
            assert bind_host in WILDCARD_HOSTS, f"{name} listens on {endpoint}, which a Service cannot reach"
            check_bind_allowed(endpoint, site.security)
            target_pod, container_port = service_target(resources, name, port)
            assert target_pod.name == name and container_port == port, f"{name}: Service port {port}"


def test_every_address_a_stage_connects_to_leads_to_the_stage_listening_there(resources, tmp_path):
    site_path = write_site(resources, tmp_path)
    plans = {name: plan_of(pod, site_path, tmp_path)[1] for name, pod in pods(resources).items()}
    site = load_site(site_path, environ={})
    endpoints = site.connect_endpoints("ipc://control", "ipc://status")
    addresses = [endpoints.link(link) for spec in STAGES for link in spec.binds]
    addresses += [*endpoints.extra_frames, *site.status_endpoints().values()]
    for address in addresses:
        pod, container_port = service_target(resources, *host_and_port(address))
        plan = plans[pod.name]
        listening = {host_and_port(endpoint)[1] for endpoint in (*plan.binds.values(), plan.status_bind,
                                                                 *(slot.frames_bind for slot in plan.capture_slots()))}
        assert container_port in listening, f"{address} leads to {pod.name}:{container_port}, where nothing listens"


def test_nothing_reaches_the_web_view_but_kubectl_port_forward(resources, tmp_path):
    site = load_site(write_site(resources, tmp_path), environ={})
    display = site.stage_config("display")
    assert "web" in display.outputs and is_loopback_host(display.web_host)
    for pod in pods(resources).values():
        assert display.web_port not in pod.container_ports().values(), pod.name
    for name, service in of_kind(resources, "Service").items():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", f"{name} is reachable from outside"
        assert display.web_port not in [entry["port"] for entry in service["spec"]["ports"]], name
    assert not of_kind(resources, "Ingress")


# ---- running unprivileged --------------------------------------------------------------------

def test_pods_run_unprivileged_on_a_read_only_root_filesystem(resources):
    dockerfile_user = [line.split()[1] for line in (BASE.parents[2] / "Dockerfile").read_text().splitlines()
                       if line.startswith("USER ")][-1]
    for name, pod in pods(resources).items():
        security = pod.spec["securityContext"]
        assert security["runAsNonRoot"] and f"{security['runAsUser']}:{security['runAsGroup']}" == dockerfile_user
        assert "fsGroup" in security and not pod.spec["automountServiceAccountToken"], name
        for container in [*pod.spec.get("initContainers", []), *pod.spec["containers"]]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"], name
            assert context["capabilities"]["drop"] == ["ALL"], name


def test_every_path_a_stage_writes_is_on_a_writable_volume(resources, tmp_path):
    # Run folders (ipc sockets), `fakeblock status` notes and HOME live in the temp folder
    # (common/endpoints.py, control/status/discovery.py); the display writes its results file.
    site_path = write_site(resources, tmp_path)
    for name, pod in pods(resources).items():
        site, plan = plan_of(pod, site_path, tmp_path)
        environ = {variable["name"]: variable["value"] for variable in pod.container.get("env", [])}
        writable = [environ.get("TMPDIR", "/tmp"), environ["HOME"]]
        if "display" in plan.stages:
            writable.append(str(Path(site.stage_config("display").results).parent))
        for path in writable:
            mount = pod.mount_of(path)
            assert not mount.get("readOnly"), f"{name}: {path} is read-only"
            assert "configMap" not in pod.volume(mount["name"]) and "secret" not in pod.volume(mount["name"])


def test_every_container_has_requests_and_limits_and_threads_fit_the_cpu_limit(resources, tmp_path):
    site = load_site(write_site(resources, tmp_path), environ={})
    for name, pod in pods(resources).items():
        for container in [*pod.spec.get("initContainers", []), *pod.spec["containers"]]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
    for stage, threads in (("detect", site.stage_config("detect").opencv_threads),
                           ("classify", site.stage_config("classify").threads)):
        cpu_limit = pods(resources)[stage].container["resources"]["limits"]["cpu"]
        # Left automatic, a stage would use the node's cores, however few the limit gives it.
        assert threads and site.stages[stage].workers * threads <= float(cpu_limit), stage


# ---- scaling ---------------------------------------------------------------------------------

def test_detect_and_classify_scale_by_replicas_alone(resources, tmp_path):
    site_path = write_site(resources, tmp_path)
    autoscalers = {autoscaler["spec"]["scaleTargetRef"]["name"]: autoscaler
                   for autoscaler in of_kind(resources, "HorizontalPodAutoscaler").values()}
    assert set(autoscalers) == set(SCALABLE)
    for stage in SCALABLE:
        pod = pods(resources)[stage]
        # The autoscaler owns the count: a replicas field would reset it at every apply.
        assert "replicas" not in pod.deployment["spec"], stage
        assert autoscalers[stage]["apiVersion"] == "autoscaling/v2" and autoscalers[stage]["spec"]["minReplicas"] >= 1
        assert autoscalers[stage]["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        # A replica listens on nothing another stage needs and connects by Service names:
        # a new one joins with the same arguments, site file and Service as the others.
        _site, plan = plan_of(pod, site_path, tmp_path)
        assert plan.binds == {} and set(pod.container_ports()) == {"status", "metrics"}, stage


def test_stages_that_listen_run_once_and_stop_before_they_are_replaced(resources, tmp_path):
    site_path = write_site(resources, tmp_path)
    for name, pod in pods(resources).items():
        _site, plan = plan_of(pod, site_path, tmp_path)
        if plan.binds or plan.capture_slots():
            # Two captures would send one stream twice; two displays would write one file.
            assert pod.deployment["spec"]["replicas"] == 1, name
            assert pod.deployment["spec"]["strategy"]["type"] == "Recreate", name


def test_services_publish_pods_before_they_are_ready(resources):
    # ZeroMQ links come up in any order: a stage's readiness must not wait for a peer.
    for name, service in of_kind(resources, "Service").items():
        assert service["spec"]["publishNotReadyAddresses"] is True, name


# ---- the network policy ----------------------------------------------------------------------

def test_only_pipeline_pods_reach_the_pipeline_ports_and_only_monitoring_the_metrics(resources, tmp_path):
    site_path = write_site(resources, tmp_path)
    (policy,) = of_kind(resources, "NetworkPolicy").values()
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    pipeline_rule, metrics_rule = spec["ingress"]
    assert [set(peer) for peer in pipeline_rule["from"]] == [{"podSelector"}], "same namespace, pipeline pods"
    assert [set(peer) for peer in metrics_rule["from"]] == [{"namespaceSelector"}]
    assert [entry["port"] for entry in metrics_rule["ports"]] == ["metrics"]
    for name, pod in pods(resources).items():
        assert selects(spec["podSelector"]["matchLabels"], pod.labels), f"{name} is not covered"
        assert selects(pipeline_rule["from"][0]["podSelector"]["matchLabels"], pod.labels), name
        _site, plan = plan_of(pod, site_path, tmp_path)
        listening = {host_and_port(endpoint)[1] for endpoint in (*plan.binds.values(), plan.status_bind,
                                                                 *(slot.frames_bind for slot in plan.capture_slots()))}
        allowed = {pod.container_ports()[entry["port"]] for entry in pipeline_rule["ports"]
                   if entry["port"] in pod.container_ports()}
        assert allowed == listening, f"{name}: the policy opens {sorted(allowed)}, it listens on {sorted(listening)}"


# ---- the overlay -----------------------------------------------------------------------------

def test_the_second_camera_is_the_first_under_another_name():
    base_text = (BASE / "capture.yaml").read_text()
    door_text = (TWO_CAMERAS / "capture-door.yaml").read_text()
    renamed = (base_text.replace("name: capture\n", "name: capture-door\n")
               .replace("component: capture\n", "component: capture-door\n")
               .replace("--host, capture,", "--host, capture-door,"))
    assert load_documents(door_text) == load_documents(renamed)
    base_site = tomllib.loads((BASE / "site.toml").read_text())
    door_site = tomllib.loads((TWO_CAMERAS / "site.toml").read_text())
    assert {**door_site, "stages": {**door_site["stages"], "capture": base_site["stages"]["capture"]}} == base_site
    assert [camera["host"] for camera in door_site["stages"]["capture"]] == ["capture", "capture-door"]


# ---- the docs page ----------------------------------------------------------------------------------

def test_the_page_says_how_to_apply_scale_and_reach_the_web_view_and_that_ci_does_not_run_it():
    section = readme_section()
    web_port = tomllib.loads((BASE / "site.toml").read_text())["stages"]["display"]["web_port"]
    for words in ("kubectl apply -k deploy/kubernetes", "scale deploy/detect --replicas 4",
                  "kubectl apply -k deploy/kubernetes/overlays/two-cameras",
                  f"port-forward deploy/display 8080:{web_port}", "validated, not run"):
        assert words in " ".join(section.split()), f"docs/kubernetes.md does not say {words!r}"
    namespaces = {line.split("-n ", 1)[1].split()[0] for line in section.splitlines() if "kubectl -n " in line}
    assert namespaces == {NAMESPACE}

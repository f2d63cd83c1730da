"""The metrics and health endpoint without a pipeline: families, token, bind rule, busy port, readiness.

The collector is fed hand-built status reports and its text is parsed back with
prometheus_client's own parser; the HTTP server is started on a free loopback port and
asked with urllib, as Prometheus and a probe would.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from fakeblock.common import counters, wire
from fakeblock.common.config import SupervisorConfig
from fakeblock.common.errors import UserError
from fakeblock.common.security.keys import METRICS_TOKEN_NAME, generate_keys
from fakeblock.control.cli.app import app
from fakeblock.control.metrics.families import LOOP_SILENT_AFTER_S, Snapshot, family_names, readiness_problem
from fakeblock.control.metrics.http_server import (
    HEALTH_PATH,
    MAX_CONCURRENT_REQUESTS,
    METRICS_PATH,
    READY_PATH,
    MetricsServer,
)
from fakeblock.control.metrics.token import MIN_TOKEN_CHARS, load_token
from fakeblock.control.site.loading import parse_site
from fakeblock.control.site.plan import plan_host
from fakeblock.control.supervisor.run_config import Deployment, build_config
from tests.helpers import STAGE_LOG_LINE, fakeblock, http_get, orphans_of

pytestmark = pytest.mark.timeout(120)
REPOSITORY = Path(__file__).resolve().parents[1]
TOKEN = "a-test-token-of-enough-characters"
HOST = "testhost"


def worker(stage: str, number: int = 0, state: str = "running", alive: bool = True, restarts: int = 0,
           **values: float) -> wire.WorkerReport:
    return wire.WorkerReport(stage, number, 1000 + number, alive, state, restarts, 0.0, 0.0,
                             {counters.FRAMES_IN: 10.0, counters.FRAMES_OUT: 9.0, counters.MALFORMED: 0.0, **values})


def display_worker() -> wire.WorkerReport:
    """A display whose heartbeat carried a histogram: 3 results at 20 ms, 1 at 300 ms."""
    buckets = {name: (3 if bound_s >= 0.025 else 0) + (1 if bound_s >= 0.5 else 0)
               for bound_s, name in counters.LATENCY_BUCKET_COUNTERS.items()}
    return worker("display", **{counters.PENDING: 4.0, counters.LATENCY_COUNT: 4.0, counters.LATENCY_SUM_S: 0.36,
                                **buckets})


def report(*workers: wire.WorkerReport, phase: str = "running") -> wire.StatusReport:
    every = workers or (worker("capture"), worker("detect"), worker("classify", **{counters.BATCH_SIZE: 3.0}),
                        display_worker())
    return wire.StatusReport(HOST, 42, phase, 12.5, tuple(every), {counters.MALFORMED_HEARTBEATS: 2.0,
                                                                   counters.MALFORMED_REQUESTS: 0.0})


def snapshot(*workers: wire.WorkerReport, phase: str = "running", age_s: float = 0.0, exit_code: int = 0,
             now_s: float = 1000.0) -> Snapshot:
    return Snapshot(report(*workers, phase=phase), now_s - age_s, exit_code)


def token_file(folder: Path, text: str = TOKEN, mode: int = 0o600) -> Path:
    path = folder / "token"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


@pytest.fixture
def serve():
    """Start a MetricsServer on a free loopback port; every one started is closed."""
    started: list[MetricsServer] = []

    def start(token_path: Path | None = None, **settings) -> MetricsServer:
        config = SupervisorConfig(metrics_port=0, metrics_token_file=str(token_path) if token_path else None,
                                  **settings)
        server = MetricsServer.start(config)
        assert server is not None
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def get(server: MetricsServer, path: str, token: str | None = None) -> tuple[int, str]:
    return http_get(server.port, path, token)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value of every sample in the exposition text."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def labels(stage: str, **extra: str) -> tuple:
    return tuple(sorted({"host": HOST, "stage": stage, "worker": "0", **extra}.items()))


def publish(server: MetricsServer, state: Snapshot) -> None:
    server.snapshot = state  # what MetricsServer.publish does, with a snapshot made by hand


# ---- the families ----------------------------------------------------------------------------

def test_each_worker_gets_the_families_of_the_counters_it_reports(serve):
    server = serve()
    publish(server, snapshot(now_s=time.monotonic()))
    status, text = get(server, METRICS_PATH)
    assert status == 200
    values = samples(text)
    assert values[("fakeblock_frames_in_total", labels("detect"))] == 10.0
    assert values[("fakeblock_frames_out_total", labels("capture"))] == 9.0
    assert values[("fakeblock_batch_size", labels("classify"))] == 3.0
    assert not any(name == "fakeblock_batch_size" and key != labels("classify") for name, key in values)
    assert values[("fakeblock_queue_depth", labels("display"))] == 4.0  # what the display holds
    assert values[("fakeblock_queue_depth", labels("detect"))] == 1.0  # in 10, out 9
    assert values[("fakeblock_worker_alive", labels("detect"))] == 1.0
    assert values[("fakeblock_worker_state", labels("detect", state="running"))] == 1.0
    assert values[("fakeblock_worker_state", labels("detect", state="silent"))] == 0.0
    assert values[("fakeblock_restarts_total", labels("detect"))] == 0.0
    assert values[("fakeblock_malformed_heartbeats_total", (("host", HOST),))] == 2.0
    assert values[("fakeblock_supervisor_ready", (("host", HOST),))] == 1.0
    assert values[("fakeblock_supervisor_phase", (("host", HOST), ("phase", "running")))] == 1.0


def test_the_display_latency_becomes_a_histogram_in_seconds(serve):
    server = serve()
    publish(server, snapshot(now_s=time.monotonic()))
    families = {family.name: family for family in text_string_to_metric_families(get(server, METRICS_PATH)[1])}
    histogram = families["fakeblock_result_latency_seconds"]
    assert histogram.type == "histogram"
    values = {(sample.name, sample.labels.get("le")): sample.value for sample in histogram.samples}
    assert values[("fakeblock_result_latency_seconds_bucket", "0.01")] == 0
    assert values[("fakeblock_result_latency_seconds_bucket", "0.025")] == 3
    assert values[("fakeblock_result_latency_seconds_bucket", "0.5")] == 4
    assert values[("fakeblock_result_latency_seconds_bucket", "+Inf")] == 4
    assert values[("fakeblock_result_latency_seconds_count", None)] == 4
    assert values[("fakeblock_result_latency_seconds_sum", None)] == pytest.approx(0.36)
    assert {sample.labels["stage"] for sample in histogram.samples} == {"display"}


def test_a_restarted_worker_is_counted_and_not_ready(serve):
    server = serve()
    restarting = worker("detect", state="restarting", alive=False, restarts=2)
    publish(server, snapshot(worker("capture"), restarting, now_s=time.monotonic()))
    values = samples(get(server, METRICS_PATH)[1])
    assert values[("fakeblock_restarts_total", labels("detect"))] == 2.0
    assert values[("fakeblock_worker_alive", labels("detect"))] == 0.0
    assert values[("fakeblock_worker_ready", labels("detect"))] == 0.0
    assert values[("fakeblock_supervisor_ready", (("host", HOST),))] == 0.0
    assert get(server, READY_PATH) == (503, "not ready: detect/0 restarting\n")
    assert get(server, HEALTH_PATH) == (200, "ok\n")  # the supervisor is on it


def test_every_family_name_follows_the_prometheus_conventions():
    names = family_names()
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"fakeblock_[a-z_]+", name), name
        assert not name.endswith(("_ms", "_milliseconds")), f"{name}: base units (seconds)"


def test_the_docs_list_every_family_and_no_other():
    section = (REPOSITORY / "docs" / "metrics-and-health.md").read_text()
    listed = set(re.findall(r"`(fakeblock_[a-z_]+)`", section))
    known = set(family_names())
    assert known <= listed, f"not in docs/metrics-and-health.md: {sorted(known - listed)}"
    assert listed <= known, f"docs/metrics-and-health.md lists unknown families: {sorted(listed - known)}"


# ---- readiness and health ---------------------------------------------------------------------

def test_ready_only_when_running_and_every_worker_runs_or_idles():
    now_s = 1000.0
    assert readiness_problem(snapshot(now_s=now_s), now_s) is None
    assert readiness_problem(snapshot(worker("detect", state="idle"), now_s=now_s), now_s) is None
    for state in ("starting", "silent", "restarting", "done"):
        assert readiness_problem(snapshot(worker("detect", state=state), now_s=now_s), now_s) == f"detect/0 {state}"
    assert readiness_problem(snapshot(phase="draining", now_s=now_s), now_s) == "supervisor draining"
    assert readiness_problem(None, now_s) == "supervisor starting"
    stalled = snapshot(age_s=LOOP_SILENT_AFTER_S + 1, now_s=now_s)
    assert readiness_problem(stalled, now_s).startswith("supervisor loop silent")


def test_healthz_fails_when_the_loop_stalls_or_the_supervisor_gave_up(serve):
    server = serve()
    assert get(server, HEALTH_PATH) == (503, "not healthy: supervisor starting\n")
    publish(server, snapshot(now_s=time.monotonic()))
    assert get(server, HEALTH_PATH) == (200, "ok\n") and get(server, READY_PATH) == (200, "ok\n")
    publish(server, snapshot(now_s=time.monotonic(), age_s=LOOP_SILENT_AFTER_S + 2))
    status, body = get(server, HEALTH_PATH)
    assert status == 503 and body.startswith("not healthy: supervisor loop silent for")
    publish(server, snapshot(phase="stopping", exit_code=1, now_s=time.monotonic()))
    assert get(server, HEALTH_PATH) == (503, "not healthy: supervisor stopping after a failure (exit code 1)\n")


def test_publish_makes_a_snapshot_at_most_every_interval(serve):
    server = serve()
    made = []

    def make_report():
        made.append(1)
        return report()

    server.publish(10.0, make_report, 0)
    server.publish(10.1, make_report, 0)
    server.publish(11.0, make_report, 1)
    assert len(made) == 2 and server.snapshot is not None and server.snapshot.exit_code == 1


# ---- who may read ------------------------------------------------------------------------------

def test_metrics_need_the_bearer_token_when_a_token_file_is_given(serve, tmp_path):
    server = serve(token_file(tmp_path))
    publish(server, snapshot(now_s=time.monotonic()))
    assert get(server, METRICS_PATH)[0] == 401
    assert get(server, METRICS_PATH, token="wrong-token-of-enough-length")[0] == 401
    assert get(server, METRICS_PATH, token=TOKEN[:-1])[0] == 401
    status, text = get(server, METRICS_PATH, token=TOKEN)
    assert status == 200
    assert samples(text)[("fakeblock_metrics_unauthorized_requests_total", (("host", HOST),))] == 3.0
    # The probes answer anyone, and say only that line.
    assert get(server, HEALTH_PATH) == (200, "ok\n") and get(server, READY_PATH) == (200, "ok\n")
    assert get(server, "/other")[0] == 404


def test_beyond_loopback_only_with_a_token_file(serve, tmp_path):
    with pytest.raises(UserError, match="refusing to serve metrics on 0.0.0.0 without a token"):
        MetricsServer.start(SupervisorConfig(metrics_port=0, metrics_host="0.0.0.0"))
    server = serve(token_file(tmp_path), metrics_host="0.0.0.0")
    assert get(server, METRICS_PATH)[0] == 401


@pytest.mark.parametrize("mode", [0o400, 0o440, 0o600, 0o640])
def test_a_token_file_of_yours_may_be_read_by_your_group(tmp_path, mode):
    # 0440 is a Kubernetes Secret volume's defaultMode, shared with the pod's fsGroup.
    assert load_token(str(token_file(tmp_path, mode=mode))) == TOKEN


@pytest.mark.parametrize("text, mode, expected", [
    (TOKEN, 0o644, "open to other users"),
    (TOKEN, 0o660, "open to other users"),
    ("", 0o600, "empty or too short"),
    ("x" * (MIN_TOKEN_CHARS - 1), 0o600, "empty or too short"),
    ("two words" * 4, 0o600, "visible ASCII"),
])
def test_a_bad_token_file_is_refused_in_one_line(tmp_path, text, mode, expected):
    with pytest.raises(UserError, match=expected):
        load_token(str(token_file(tmp_path, text, mode)))


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user takes root")
def test_a_token_file_of_another_user_is_refused(tmp_path):
    path = token_file(tmp_path, mode=0o400)
    os.chown(path, 12345, 12345)  # that user could replace the token with one they know
    with pytest.raises(UserError, match="belongs to another user"):
        load_token(str(path))
    os.chown(path, 0, 12345)  # root's, shared with a group: a Kubernetes Secret with fsGroup
    path.chmod(0o440)
    assert load_token(str(path)) == TOKEN


def test_a_missing_token_file_or_a_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match="No such file"):
        load_token(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="not a regular file"):
        load_token(str(tmp_path))


def test_keys_generate_writes_a_private_token_and_keeps_it_when_a_client_is_added(tmp_path):
    written = generate_keys(tmp_path / "keys")
    token_path = tmp_path / "keys" / METRICS_TOKEN_NAME
    assert token_path in written and token_path.stat().st_mode & 0o777 == 0o600
    token = load_token(str(token_path))
    assert len(token) >= 40
    assert token_path not in generate_keys(tmp_path / "keys", names=("another",))
    assert load_token(str(token_path)) == token
    generate_keys(tmp_path / "keys", force=True)
    assert load_token(str(token_path)) != token


def test_a_flood_of_idle_connections_holds_no_thread_and_blocks_no_probe(serve):
    server = serve()
    publish(server, snapshot(now_s=time.monotonic()))
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5)
            for _ in range(4 * MAX_CONCURRENT_REQUESTS)]
    try:
        time.sleep(0.3)  # every idle connection has been accepted
        assert get(server, HEALTH_PATH) == (200, "ok\n")
        status, text = get(server, METRICS_PATH)
        assert status == 200 and "fakeblock_frames_in_total" in text
    finally:
        for connection in idle:
            connection.close()


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline_s = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline_s:
            return False
        time.sleep(0.05)
    return True


def test_up_refuses_metrics_beyond_loopback_without_a_token_in_one_line():
    result = CliRunner().invoke(app, ["up", "--no-status", "--display", "none", "--source", "demo",
                                      "--metrics-port", "9999", "--metrics-host", "0.0.0.0"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refusing to serve metrics on 0.0.0.0 without a token" in errors[0], result.output
    assert "Traceback" not in result.output


def test_up_refuses_a_metrics_port_a_link_of_this_host_listens_on(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text("[site]\ninsecure = true\n[supervisor]\nport = 5999\nmetrics_port = 5999\n")
    result = CliRunner().invoke(app, ["up", "--no-status", "--config", str(site), "--source", "demo"])
    assert result.exit_code == 2, result.output
    assert "error: metrics port 5999 is also where tcp://127.0.0.1:5999 listens" in result.output


def test_a_busy_port_is_one_line(serve):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UserError, match=f"metrics port 127.0.0.1:{port} is already in use"):
            MetricsServer.start(SupervisorConfig(metrics_port=port))


def test_up_with_a_busy_metrics_port_exits_before_any_stage_starts():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = subprocess.Popen(fakeblock("up", "--source", "demo", "--display", "none", "--no-status",
                                             "--metrics-port", str(port)),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _stdout, stderr = process.communicate(timeout=90)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 9)
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: metrics port 127.0.0.1:{port} is already in use; choose another --metrics-port"]
    assert not STAGE_LOG_LINE.search(stderr), stderr  # no stage said a word
    assert not orphans_of(process.pid)


# ---- where the settings come from --------------------------------------------------------------

def test_the_metrics_settings_come_from_the_site_file_the_environment_and_the_command_line(tmp_path):
    site = parse_site({"supervisor": {"metrics_port": 9200, "metrics_host": "0.0.0.0",
                                      "metrics_token_file": "/run/token"}}, "site.toml", {})
    plan = plan_host(site, tmp_path)
    assert plan.pipeline_config().supervisor == SupervisorConfig(9200, "0.0.0.0", "/run/token")
    environ = {"FAKEBLOCK_SUPERVISOR_METRICS_PORT": "9300"}
    assert parse_site({"supervisor": {"metrics_port": 9200}}, "site.toml", environ).supervisor.metrics_port == 9300
    with pytest.raises(UserError, match="out of range"):
        parse_site({"supervisor": {"metrics_port": 70000}}, "site.toml", {})
    config = build_config(Deployment(), {"metrics_port": 9400, "metrics_host": "::1"}, environ={})
    assert config.supervisor == replace(SupervisorConfig(), metrics_port=9400, metrics_host="::1")
    assert build_config(Deployment(), {}, environ={}).supervisor.metrics_port is None  # off by default

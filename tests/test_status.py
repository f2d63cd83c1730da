"""`fakeblock status` pieces: local discovery, the supervisor's status service, the client and the table."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
import zmq

from fakeblock.common import wire
from fakeblock.common.security.access import Security, SecurityConfig
from fakeblock.common.security.keys import generate_keys
from fakeblock.control.status import discovery
from fakeblock.control.status.client import Target, ask
from fakeblock.control.status.service import StatusService
from fakeblock.control.status.table import stage_summary, status_document, status_table
from tests.harness import terminate_context

WORKERS = (
    wire.WorkerReport("detect", 0, 101, True, "running", 0, 12.0, 11.5, {"frames_in": 50, "frames_out": 48,
                                                                          "dropped": 1, "uptime_s": 30.0}),
    wire.WorkerReport("detect", 1, 102, False, "restarting", 2, 0.0, 0.0, {"frames_in": 5, "frames_out": 5}),
    wire.WorkerReport("classify", 0, 103, True, "idle", 0, 24.0, 24.0, {"batch_size": 8, "uptime_s": 31.0}),
    wire.WorkerReport("display", 0, 104, True, "running", 0, 20.0, 20.0, {"pending": 3, "latency_p95_ms": 80.0,
                                                                           "uptime_s": 29.0}),
)
REPORT = wire.StatusReport("gpu-box", 4242, "running", 31.5, WORKERS,
                           {"malformed_heartbeats": 2, "malformed_requests": 1})


# ---- discovery -----------------------------------------------------------------------------

def test_a_registered_pipeline_is_found_until_its_process_is_gone(tmp_path):
    folder = tmp_path / "registry"
    mine = discovery.LocalPipeline(os.getpid(), "laptop", "ipc:///tmp/x/status-service", ("detect",),
                                   SecurityConfig(keys_directory="/keys"))
    note = discovery.register(mine, folder)
    assert (folder.stat().st_mode & 0o777) == 0o700 and (note.stat().st_mode & 0o777) == 0o600
    assert discovery.local_pipelines(folder) == [mine]
    dead = discovery.LocalPipeline(2**22 + 12345, "laptop", "ipc:///tmp/y/status-service")
    stale = discovery.register(dead, folder)
    assert discovery.local_pipelines(folder) == [mine] and not stale.exists(), "a dead supervisor's note is removed"
    discovery.unregister(note)
    assert discovery.local_pipelines(folder) == []


def test_notes_in_a_folder_others_can_write_are_ignored(tmp_path):
    folder = tmp_path / "registry"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    (folder / f"{os.getpid()}.json").write_text(json.dumps({"pid": os.getpid(), "host": "x",
                                                             "status_service": "ipc:///tmp/evil"}))
    assert discovery.local_pipelines(folder) == []
    assert discovery.register(discovery.LocalPipeline(os.getpid(), "x", "ipc:///tmp/a"), folder) is None


def test_malformed_notes_are_skipped(tmp_path):
    folder = tmp_path / "registry"
    folder.mkdir(mode=0o700)
    (folder / "1.json").write_text("{not json")
    (folder / "2.json").write_text(json.dumps({"pid": os.getpid(), "host": "x", "status_service": "tcp://1.2.3.4:1"}))
    assert discovery.local_pipelines(folder) == []


def test_the_registry_lives_in_the_runtime_directory_when_there_is_one(tmp_path):
    assert discovery.registry_directory({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "fakeblock"
    assert discovery.registry_directory({}).name == f"fakeblock-{os.getuid()}"


# ---- service and client ----------------------------------------------------------------------

NO_KEYS = SecurityConfig()  # frozen: one shared default is safe


class ServiceThread:
    """A status service answering in a thread, as the supervisor's loop does."""

    def __init__(self, local: str | None, network: str | None = None, security_config: SecurityConfig = NO_KEYS):
        self.context = zmq.Context()
        self.security = Security(security_config)
        self.security.start(self.context)
        self.service = StatusService(self.context, self.security, local, network)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        poller = zmq.Poller()
        for socket in self.service.sockets:
            poller.register(socket, zmq.POLLIN)
        while self.running:
            ready = {socket for socket, _event in poller.poll(50)}
            self.service.answer(ready, lambda: REPORT)

    def close(self) -> None:
        self.running = False
        self.thread.join(5)
        assert not self.thread.is_alive(), "the status service thread did not stop within 5 s"
        self.service.close()
        self.security.stop()
        terminate_context(self.context)


@pytest.fixture
def services():
    made: list[ServiceThread] = []
    yield made
    for service in made:
        service.close()


def free_tcp_endpoint() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.timeout(60)
def test_every_host_answers_and_a_silent_one_costs_one_timeout(services, tmp_path):
    services.append(ServiceThread(f"ipc://{tmp_path}/status-service", free_tcp_endpoint()))
    tcp_endpoint = services[0].service.sockets[1].getsockopt_string(zmq.LAST_ENDPOINT)
    targets = [Target("a", f"ipc://{tmp_path}/status-service", SecurityConfig()),
               Target("b", tcp_endpoint, SecurityConfig()),
               Target("silent", free_tcp_endpoint(), SecurityConfig())]
    started_s = time.monotonic()
    answers = ask(targets, timeout_s=1.0)
    assert time.monotonic() - started_s < 3.0
    assert [answer.report for answer in answers[:2]] == [REPORT, REPORT]
    assert answers[2].report is None and answers[2].error == "no answer"


@pytest.mark.timeout(60)
def test_malformed_requests_are_dropped_and_the_service_keeps_answering(services, tmp_path, zmq_context):
    endpoint = f"ipc://{tmp_path}/status-service"
    services.append(ServiceThread(endpoint))
    for garbage in ([b"\x00junk"], [b"a", b"b"], wire.encode(wire.Control("stop"))):
        dealer = zmq_context.socket(zmq.DEALER, connect=endpoint)
        dealer.send_multipart([b"", *garbage])
        assert dealer.poll(300) == 0, "nothing answers a malformed request"
        dealer.close()
    assert ask([Target("a", endpoint, SecurityConfig())], timeout_s=5.0)[0].report == REPORT
    assert services[0].service.malformed == 3


@pytest.mark.timeout(60)
def test_with_keys_only_an_allow_listed_client_gets_an_answer(services, tmp_path):
    keys = tmp_path / "keys"
    generate_keys(keys)
    secured = SecurityConfig(keys_directory=str(keys))
    services.append(ServiceThread(None, free_tcp_endpoint(), secured))
    endpoint = services[0].service.sockets[0].getsockopt_string(zmq.LAST_ENDPOINT)
    assert ask([Target("keys", endpoint, secured)], timeout_s=5.0)[0].report == REPORT
    assert ask([Target("plain", endpoint, SecurityConfig())], timeout_s=1.0)[0].report is None


def test_a_busy_site_status_port_is_a_warning_not_a_failure(services, tmp_path, caplog):
    endpoint = free_tcp_endpoint()
    services.append(ServiceThread(f"ipc://{tmp_path}/first", endpoint))
    services.append(ServiceThread(f"ipc://{tmp_path}/second", endpoint))
    assert len(services[1].service.sockets) == 1 and "is taken" in caplog.text


# ---- the table -----------------------------------------------------------------------------

def test_workers_of_a_stage_are_added_up():
    detect = stage_summary("detect", list(WORKERS[:2]))
    assert (detect["workers"], detect["alive"], detect["restarts"]) == (2, 1, 2)
    # 50 in, 48 out, 1 dropped: one frame held (a dropped frame is not in the queue).
    assert detect["frames_in_per_s"] == 12.0 and detect["queue_depth"] == 1 and detect["drops"] == 1
    assert detect["states"] == ["restarting", "running"] and detect["uptime_s"] == 30.0
    display = stage_summary("display", [WORKERS[3]])
    assert display["queue_depth"] == 3 and display["latency_p95_ms"] == 80.0


def test_the_document_lists_stages_in_pipeline_order_and_silent_hosts(tmp_path):
    from fakeblock.control.status.client import Answer

    answers = [Answer(Target("gpu-box", "tcp://10.0.0.6:5557", SecurityConfig()), report=REPORT),
               Answer(Target("camera", "tcp://10.0.0.5:5557", SecurityConfig()), error="no answer")]
    document = status_document(answers)
    assert [stage["stage"] for stage in document["hosts"][0]["stages"]] == ["detect", "classify", "display"]
    assert document["hosts"][1] == {"host": "camera", "endpoint": "tcp://10.0.0.5:5557", "answered": False,
                                    "error": "no answer"}
    json.dumps(document)
    text = render_at_80_columns(status_table(document))
    lines = text.splitlines()
    classify = next(index for index, line in enumerate(lines) if line.strip().startswith("classify"))
    assert lines[classify + 1].strip() == "(idle)" and "no answer" in text and "0:31" in text


def test_the_supervisors_own_malformed_counts_are_in_the_document_and_its_row():
    from fakeblock.control.status.client import Answer

    draining = wire.StatusReport("gpu-box", 4242, "draining", 31.5, WORKERS[:1], {"malformed_heartbeats": 2,
                                                                                  "malformed_requests": 1})
    document = status_document([Answer(Target("gpu-box", "tcp://10.0.0.6:5557", SecurityConfig()), report=draining)])
    assert document["hosts"][0]["supervisor_counters"] == {"malformed_heartbeats": 2, "malformed_requests": 1}
    lines = render_at_80_columns(status_table(document)).splitlines()
    host = next(index for index, line in enumerate(lines) if line.strip().startswith("gpu-box"))
    assert lines[host].split() == ["gpu-box", "3", "0:31"] and lines[host + 1].strip() == "(draining)", lines
    header = next(line for line in lines if line.strip().startswith("stage"))
    assert header.index("drops") < lines[host].index("3") + 1 <= header.index("drops") + len("drops")


def render_at_80_columns(renderable) -> str:
    """``renderable`` as an 80-column terminal shows it, checked to fit with no name cut short."""
    from rich.console import Console

    console = Console(width=80, record=True)
    console.print(renderable)
    text = console.export_text()
    assert "…" not in text and max(len(line.rstrip()) for line in text.splitlines()) <= 80, text
    return text


def test_the_status_table_fits_80_columns_with_every_name_whole():
    from fakeblock.control.status.client import Answer

    busy = wire.StatusReport("camera-hall-2", 1, "running", 3600.0, (
        wire.WorkerReport("capture", 0, 7, True, "running", 0, 30.0, 29.9, {"frames_in": 9000, "frames_out": 5140,
                                                                          "dropped": 3860, "uptime_s": 3599.0}),
        *WORKERS), {})
    text = render_at_80_columns(status_table(status_document(
        [Answer(Target("camera-hall-2", "tcp://10.0.0.6:5557", SecurityConfig()), report=busy)])))
    for name in ("stage", "alive", "in/s", "out/s", "queue", "drops", "batch", "p95 ms", "uptime",
                 "camera-hall-2", "capture", "detect", "classify", "display", "(restarting)"):
        assert name in text, name


def test_a_live_captures_dropped_frames_are_not_in_its_queue():
    from fakeblock.control.status.table import queue_depth

    # A camera that read 9000 frames, sent 5140 and dropped 3860 for want of room holds none.
    assert queue_depth({"frames_in": 9000, "frames_out": 5140, "dropped": 3860}) == 0
    assert queue_depth({"frames_in": 9002, "frames_out": 5140, "dropped": 3860}) == 2
    live = wire.WorkerReport("capture", 0, 7, True, "running", 0, 30.0, 20.0,
                             {"frames_in": 9000, "frames_out": 5140, "dropped": 3860})
    summary = stage_summary("capture", [live])
    assert (summary["queue_depth"], summary["drops"]) == (0, 3860)

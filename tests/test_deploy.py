"""The deployment file: parsing, environment overrides, each host's plan, and bad files."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from fakeblock.common.config import CaptureConfig, DetectConfig
from fakeblock.common.endpoints import tcp_endpoints
from fakeblock.common.errors import UserError
from fakeblock.common.security.access import SecurityConfig
from fakeblock.control.site import loading as deploy
from fakeblock.control.site import plan as site_plan
from fakeblock.control.site import schema as deploy_schema

EXAMPLE_FILE = Path(__file__).resolve().parents[1] / "docs" / "site.example.toml"
RUN_DIRECTORY = "/run/fakeblock-test"
FULL_SITE = """
[site]
keys = "/etc/fakeblock/keys"
insecure = false

[supervisor]
port = 5560
bind = "0.0.0.0"

[stages.capture]
host = "10.0.0.5"
bind = "0.0.0.0"
port = 5550
source = "0"
stream = "door"

[stages.detect]
host = "10.0.0.6"
workers = 2
min_neighbors = 4

[stages.queue]
host = "10.0.0.6"
ports = [5551, 5552]

[stages.classify]
host = "10.0.0.6"
workers = 1
batch_timeout_ms = 5

[stages.display]
host = "10.0.0.7"
ports = [5553, 5554]
results = "results.jsonl"
outputs = ["web"]
"""


def parse(text: str, environ: dict | None = None) -> deploy.Site:
    return deploy.parse_site(tomllib.loads(text), "site.toml", environ or {})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def test_the_worked_example_parses():
    site = deploy.load_site(EXAMPLE_FILE, environ={})
    assert site.security == SecurityConfig(keys_directory="/etc/fakeblock/keys", insecure=False)
    assert site.hosts() == ("10.0.0.5", "10.0.0.6", "10.0.0.8", "10.0.0.7")
    assert site.stages["detect"].hosts == ("10.0.0.6", "10.0.0.8")
    spare = site_plan.plan_host(site, RUN_DIRECTORY, only="detect", host="10.0.0.8", environ={})
    assert spare.stages == ("detect",) and spare.workers == {"detect": 2} and spare.binds == {}
    # Tracking gives each stream to one detect worker of the site: this host's are numbered 2 and 3 of 4.
    detect = spare.pipeline_config().detect
    assert (detect.worker_count, detect.first_worker) == (4, 2)


def test_a_full_file_gives_each_host_its_endpoints_workers_and_configs():
    site = parse(FULL_SITE)
    plan = site_plan.plan_host(site, RUN_DIRECTORY, only="detect,classify,queue", environ={})
    assert plan.host == "10.0.0.6" and plan.stages == ("detect", "queue", "classify")
    assert plan.endpoints.as_dict() == {
        "frames": "tcp://10.0.0.5:5550", "faces_in": "tcp://10.0.0.6:5551", "faces_out": "tcp://10.0.0.6:5552",
        "results": "tcp://10.0.0.7:5553", "display_frames": "tcp://10.0.0.7:5554",
        "control": f"ipc://{RUN_DIRECTORY}/control", "status": f"ipc://{RUN_DIRECTORY}/status", "extra_frames": ()}
    assert plan.binds == {"faces_in": "tcp://10.0.0.6:5551", "faces_out": "tcp://10.0.0.6:5552"}
    assert plan.workers == {"detect": 2, "queue": 1, "classify": 1}
    assert plan.status_bind == "tcp://0.0.0.0:5560"
    config = plan.pipeline_config()
    assert (config.detect_workers, config.classify_workers) == (2, 1)
    assert config.detect == DetectConfig(min_neighbors=4, worker_count=2)
    assert config.classify.batch_timeout_ms == 5.0 and isinstance(config.classify.batch_timeout_ms, float)
    assert config.display.outputs == ("web",) and config.display.results == "results.jsonl"
    assert site.stage_config("capture") == CaptureConfig(source="0", stream="door")
    assert site.stage_config("queue") is None


def test_a_stage_listens_on_bind_while_others_connect_to_host():
    plan = site_plan.plan_host(parse(FULL_SITE), RUN_DIRECTORY, only="capture", environ={})
    assert plan.endpoints_for("capture").frames == "tcp://0.0.0.0:5550"
    assert plan.endpoints_for("capture").display_frames == "tcp://10.0.0.7:5554"
    assert plan.endpoints_for("detect").frames == "tcp://10.0.0.5:5550"
    assert plan.endpoints_for("display") == plan.endpoints


def test_command_line_keys_and_insecure_win_over_the_file():
    site = parse(FULL_SITE).with_security(keys_directory="/home/me/keys", insecure=True)
    assert site.security == SecurityConfig("/home/me/keys", insecure=True)
    assert parse(FULL_SITE).with_security().security == parse(FULL_SITE).security


def test_status_endpoints_name_every_hosts_supervisor():
    assert parse(FULL_SITE).status_endpoints() == {"10.0.0.5": "tcp://10.0.0.5:5560",
                                                   "10.0.0.6": "tcp://10.0.0.6:5560",
                                                   "10.0.0.7": "tcp://10.0.0.7:5560"}


def test_an_empty_file_is_one_loopback_host_with_the_usual_ports():
    site = parse("")
    plan = site_plan.plan_host(site, RUN_DIRECTORY, environ={})
    assert plan.host == "127.0.0.1" and plan.stages == deploy_schema.STAGE_NAMES
    usual = tcp_endpoints().as_dict()
    assert {link: plan.endpoints.as_dict()[link] for link in deploy_schema.BOUND_LINKS["queue"]} == \
        {link: usual[link] for link in ("faces_in", "faces_out")}
    assert plan.endpoints.frames == usual["frames"] and plan.endpoints.results == usual["results"]
    assert site.security == SecurityConfig()
    plan.check_binds()  # loopback only: allowed without keys


def test_binding_beyond_loopback_without_keys_is_refused_at_plan_check():
    plan = site_plan.plan_host(parse(FULL_SITE.replace('keys = "/etc/fakeblock/keys"', "")), RUN_DIRECTORY,
                            only="capture", environ={})
    with pytest.raises(UserError, match=r"refusing to listen on tcp://0\.0\.0\.0:5550 without CurveZMQ keys"):
        plan.check_binds()
    insecure = site_plan.plan_host(parse(FULL_SITE.replace('keys = "/etc/fakeblock/keys"', "insecure = true")
                                      .replace("insecure = false", "")), RUN_DIRECTORY, only="capture", environ={})
    insecure.check_binds()


def test_environment_variables_override_the_file(tmp_path):
    environ = {"FAKEBLOCK_CONFIG": str(write(tmp_path, FULL_SITE)), "FAKEBLOCK_CAPTURE_SOURCE": "rtsp://cam/1",
               "FAKEBLOCK_DETECT_WORKERS": "3", "FAKEBLOCK_KEYS": "/run/secrets/keys", "FAKEBLOCK_INSECURE": "yes",
               "FAKEBLOCK_DISPLAY_OUTPUTS": "web, none", "FAKEBLOCK_QUEUE_PORT": "6000",
               "FAKEBLOCK_CLASSIFY_MODEL": "", "FAKEBLOCK_CAPTURE_STREAM": "", "FAKEBLOCK_SUPERVISOR_PORT": "5599",
               "FAKEBLOCK_DETECT_HOST": "10.0.0.6,10.0.0.9", "FAKEBLOCK_CLIENT_KEY": "gpu-box"}
    site = deploy.load_site(environ=environ)
    assert site.stage_config("capture").source == "rtsp://cam/1" and site.stage_config("capture").stream is None
    assert site.stages["detect"].workers == 3 and site.stages["detect"].hosts == ("10.0.0.6", "10.0.0.9")
    assert site.security == SecurityConfig("/run/secrets/keys", insecure=True, client_key_name="gpu-box")
    assert site.stage_config("display").outputs == ("web", "none")
    assert site.stages["queue"].ports == (6000, 6001)  # replaces the file's `ports`
    assert site.stage_config("classify").model is None and site.supervisor_port == 5599


def test_only_and_host_come_from_the_environment_too():
    site = deploy.load_site(EXAMPLE_FILE, environ={})
    plan = site_plan.plan_host(site, RUN_DIRECTORY, environ={"FAKEBLOCK_ONLY": "detect", "FAKEBLOCK_HOST": "10.0.0.8"})
    assert (plan.host, plan.stages) == ("10.0.0.8", ("detect",))
    assert site_plan.plan_host(site, RUN_DIRECTORY, host="10.0.0.6", environ={}).stages == ("detect", "queue",
                                                                                       "classify")


@pytest.mark.parametrize("name, value, message", [
    ("FAKEBLOCK_DETECT_WORKERS", "two", "environment FAKEBLOCK_DETECT_WORKERS: expected an integer, got 'two'"),
    ("FAKEBLOCK_DETECT_WORKERS", "40", "environment FAKEBLOCK_DETECT_WORKERS: 40 is out of range"),
    ("FAKEBLOCK_INSECURE", "maybe", "environment FAKEBLOCK_INSECURE: expected true or false"),
    ("FAKEBLOCK_CAPTURE_PORT", "70000", "environment FAKEBLOCK_CAPTURE_PORT: 70000 is out of range"),
    ("FAKEBLOCK_DISPLAY_OUTPUTS", "tv", "'tv' is not one of window, web, none"),
])
def test_bad_environment_values_name_the_variable(name, value, message):
    with pytest.raises(UserError, match=message):
        parse(FULL_SITE, {name: value})


def test_every_listed_variable_is_read_and_typos_are_warned_about(caplog):
    names = deploy_schema.environment_variables()
    assert {"FAKEBLOCK_CAPTURE_SOURCE", "FAKEBLOCK_DETECT_WORKERS", "FAKEBLOCK_KEYS", "FAKEBLOCK_CONFIG",
            "FAKEBLOCK_ONLY", "FAKEBLOCK_HOST", "FAKEBLOCK_SUPERVISOR_PORT"} <= set(names)
    assert len(names) == len(set(names)) and not set(names) & set(deploy_schema.INTERNAL_VARIABLES)
    readable = {deploy_schema.environment_name(section, key) for section, schema in deploy_schema.sections().items()
                for key in schema}
    assert set(names) - readable == {"FAKEBLOCK_CONFIG", "FAKEBLOCK_ONLY", "FAKEBLOCK_HOST"}
    with caplog.at_level(logging.WARNING, logger="fakeblock.control.site.schema"):
        parse(FULL_SITE, {"FAKEBLOCK_DETECT_WORKER": "2", "FAKEBLOCK_SUPERVISOR_PID": "1"})
    assert "FAKEBLOCK_DETECT_WORKER is not used" in caplog.text and "FAKEBLOCK_SUPERVISOR_PID" not in caplog.text


@pytest.mark.parametrize("text, message", [
    ("[stages.capture\nhost = 1", r"site\.toml: not valid TOML: .*line 1"),
    ("[site]\ninsecure = false\nkeys = /etc\n", r"not valid TOML: .*line 3"),
    ("[stages.detekt]\nworkers = 2", r"unknown stage \[stages\.detekt\] \(did you mean 'detect'\?\)"),
    ("[stage.detect]\nworkers = 2", r"unknown section \[stage\] \(did you mean 'stages'\?\)"),
    ("[stages.detect]\nworker = 2", r"stages\.detect: unknown key 'worker' \(did you mean 'workers'\?\)"),
    ("[stages.detect]\nworkers = \"two\"", r"stages\.detect\.workers: expected an integer, got a string 'two'"),
    ("[stages.detect]\nworkers = 17", r"stages\.detect\.workers: 17 is out of range \(1 to 16\)"),
    ("[stages.capture]\nrealtime = 1", r"stages\.capture\.realtime: expected true or false, got an integer 1"),
    ("[stages.capture]\nport = 70000", r"stages\.capture\.port: 70000 is out of range \(1 to 65535\)"),
    ("[stages.capture]\nport = 0", r"stages\.capture\.port: 0 is out of range"),
    ("[stages.display]\nport = 65535", r"stages\.display: port 65536 is out of range"),
    ("[stages.queue]\nports = [5551]", r"stages\.queue\.ports: expected 2 ports \(faces_in, faces_out\), got 1"),
    ("[stages.queue]\nport = 5551\nports = [5551, 5552]", r"stages\.queue: give port or ports, not both"),
    ("[stages.capture]\nhost = [\"a\", \"b\"]", r"stages\.capture\.host: a stage that listens runs on exactly one"),
    ("[stages.capture]\nhost = \"10.0.0.5:5550\"", r"stages\.capture\.host: '10\.0\.0\.5:5550' is not an address"),
    ("[stages.capture]\nhost = \"0.0.0.0\"", r"stages\.capture\.host: 0\.0\.0\.0 means every interface"),
    ("[stages.display]\noutputs = [\"tv\"]", r"stages\.display\.outputs: 'tv' is not one of window, web, none"),
    ("[stages.display]\nlive = true", r"stages\.display: unknown key 'live'"),
    ("[stages.queue]\nworkers = 2", r"stages\.queue: unknown key 'workers'"),
    ("stages = 5", r"stages must be a table"),
    ("[stages]\ncapture = 5", r"stages\.capture must be a table or a list of tables \(\[\[stages\.capture\]\]\), "
                              r"got an integer 5"),
    ("[supervisor]\nport = 5551", r"port 5551 on 127\.0\.0\.1 is used by both the supervisor's status service "
                                  r"and queue \(faces_in\)"),
    ("[stages.display]\nport = 5550", r"port 5550 on 127\.0\.0\.1 is used by both capture \(frames\) and display"),
    ("[[stages.capture]]\nstream = \"a\"\n[[stages.capture]]\nstream = \"b\"",
     r"port 5550 on 127\.0\.0\.1 is used by both capture\[0\] \(frames\) and capture\[1\] \(frames\)"),
    ("[[stages.capture]]\nstream = \"a\"\n[[stages.capture]]\nport = 5560",
     r"stages\.capture\[1\] needs a stream name"),
    ("[[stages.capture]]\nstream = \"a\"\n[[stages.capture]]\nstream = \"a\"\nport = 5560",
     r"stream 'a' is named by two capture stages"),
    ("[[stages.capture]]\nstream = \"a\"\nsorce = \"0\"", r"stages\.capture\[0\]: unknown key 'sorce'"),
    ("[[stages.capture]]\nstream = \"a\"\n[[stages.capture]]\nstream = \"b\"\nport = 0",
     r"stages\.capture\[1\]\.port: 0 is out of range"),
    ("[[stages.detect]]\nworkers = 2", r"stages\.detect must be a table, got a list"),
])
def test_bad_files_are_one_clear_line(tmp_path, text, message):
    with pytest.raises(UserError, match=message) as raised:
        deploy.load_site(write(tmp_path, text), environ={})
    assert "\n" not in str(raised.value) and str(raised.value).startswith(str(tmp_path / "site.toml"))


def test_a_missing_file_or_no_file_at_all_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such deployment file"):
        deploy.load_site(tmp_path / "absent.toml", environ={})
    with pytest.raises(UserError, match="pass --config site.toml or set FAKEBLOCK_CONFIG"):
        deploy.load_site(environ={})


@pytest.mark.parametrize("only, host, message", [
    ("detect,classfy", None, r"--only: unknown stage 'classfy'"),
    (None, None, r"places stages on 3 hosts .*pass --only STAGES"),
    ("capture,display", None, r"places these stages on different hosts \(capture on 10\.0\.0\.5; display on"),
    ("capture", "10.0.0.6", r"places capture on 10\.0\.0\.5, not on 10\.0\.0\.6"),
    (None, "10.0.0.9", r"no stage runs on 10\.0\.0\.9"),
])
def test_a_host_plan_that_cannot_work_is_refused(only, host, message):
    with pytest.raises(UserError, match=message):
        site_plan.plan_host(parse(FULL_SITE), RUN_DIRECTORY, only=only, host=host, environ={})


def test_a_worker_stage_on_several_hosts_runs_where_this_machine_is():
    site = parse('[stages.detect]\nhost = ["192.0.2.1", "127.0.0.1"]\n[stages.capture]\nhost = "127.0.0.1"')
    assert site_plan.plan_host(site, RUN_DIRECTORY, only="detect", environ={}).host == "127.0.0.1"
    assert site_plan.is_this_machine("localhost") and not site_plan.is_this_machine("192.0.2.1")


def test_ipv6_hosts_get_brackets_in_endpoints():
    site = parse('[stages.capture]\nhost = "::1"\n[stages.display]\nhost = "[::1]"\nbind = "::"')
    plan = site_plan.plan_host(site, RUN_DIRECTORY, only="capture,display", environ={})
    assert plan.endpoints.frames == "tcp://[::1]:5550" and plan.binds["results"] == "tcp://[::]:5553"


TWO_CAMERAS = """
[[stages.capture]]
host = "10.0.0.5"
source = "0"
stream = "door"

[[stages.capture]]
host = "10.0.0.9"
port = 5560
source = "rtsp://hall/1"
stream = "hall"

[stages.detect]
host = "10.0.0.6"
workers = 2

[stages.queue]
host = "10.0.0.6"

[stages.classify]
host = "10.0.0.6"

[stages.display]
host = "10.0.0.7"
"""


def test_several_cameras_each_listen_and_detect_connects_to_all_of_them():
    site = parse(TWO_CAMERAS)
    assert [placement.options["stream"] for placement in site.captures] == ["door", "hall"]
    assert site.hosts() == ("10.0.0.5", "10.0.0.9", "10.0.0.6", "10.0.0.7")
    workers = site_plan.plan_host(site, RUN_DIRECTORY, host="10.0.0.6", environ={})
    assert workers.endpoints.all_frames() == ("tcp://10.0.0.5:5550", "tcp://10.0.0.9:5560")
    assert workers.pipeline_config().captures == () and workers.pipeline_config().capture_slots() == ()
    hall = site_plan.plan_host(site, RUN_DIRECTORY, only="capture", host="10.0.0.9", environ={})
    config = hall.pipeline_config()
    assert [(slot.index, slot.config.stream, slot.frames_bind) for slot in config.capture_slots()] == \
        [(1, "hall", "tcp://10.0.0.9:5560")]
    assert config.display.expected_streams == 2
    display = site_plan.plan_host(site, RUN_DIRECTORY, only="display", environ={}).pipeline_config()
    assert display.display.expected_streams == 2 and display.capture_slots() == ()


def test_two_cameras_on_one_host_both_run_there():
    text = TWO_CAMERAS.replace('host = "10.0.0.9"', 'host = "10.0.0.5"')
    plan = site_plan.plan_host(parse(text), RUN_DIRECTORY, only="capture", environ={})
    assert plan.host == "10.0.0.5" and plan.captures == (0, 1)
    assert [slot.frames_bind for slot in plan.pipeline_config().capture_slots()] == ["tcp://10.0.0.5:5550",
                                                                                    "tcp://10.0.0.5:5560"]


def test_a_capture_variable_cannot_choose_among_several_cameras():
    with pytest.raises(UserError, match="FAKEBLOCK_CAPTURE_SOURCE: the file lists 2 capture stages"):
        parse(TWO_CAMERAS, {"FAKEBLOCK_CAPTURE_SOURCE": "1"})
    single = parse('[[stages.capture]]\nsource = "0"\nstream = "door"\n', {"FAKEBLOCK_CAPTURE_SOURCE": "1"})
    assert single.stage_config("capture").source == "1"


def test_one_camera_keeps_a_plain_pipeline_config():
    config = site_plan.plan_host(parse(""), RUN_DIRECTORY, environ={}).pipeline_config()
    assert config.captures == () and config.display.expected_streams == 1
    assert [(slot.index, slot.frames_bind) for slot in config.capture_slots()] == [(0, "tcp://127.0.0.1:5550")]
    assert config.status_service == "tcp://127.0.0.1:5557" and config.host == "127.0.0.1"
    assert config.stages == deploy_schema.STAGE_NAMES and config.security == SecurityConfig()

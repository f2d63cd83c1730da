"""What `fakeblock up` runs on this host (plain, --only, --config), its up-front checks, and `fakeblock keys`."""

from __future__ import annotations

import logging
import os
import shutil
import socket as system_socket
import stat
import tempfile

import pytest
import zmq
from typer.testing import CliRunner

from fakeblock.common.config import CaptureSlot
from fakeblock.common.endpoints import DATA_LINKS, LOCAL_SITE_FOLDER_NAME, run_directory_of
from fakeblock.common.errors import UserError
from fakeblock.common.security.access import is_local_endpoint
from fakeblock.common.security.keys import generate_keys
from fakeblock.common.sockets import bind, ipc_in_use
from fakeblock.common.stages import STAGE_NAMES
from fakeblock.control.cli.app import app
from fakeblock.control.supervisor import preflight as up
from fakeblock.control.supervisor.run_config import Deployment, build_config
from tests.helpers import MEDIA

TWO_CAMERAS = """
[[stages.capture]]
port = 16550
source = "a.mp4"
stream = "a"

[[stages.capture]]
port = 16560
source = "b.mp4"
stream = "b"
"""


@pytest.fixture
def built():
    """Configs made by a test; their run directories are removed afterwards."""
    configs = []

    def make(*args, **kwargs):
        configs.append(build_config(*args, **kwargs))
        return configs[-1]

    yield make
    for config in configs:
        shutil.rmtree(run_directory_of(config.endpoints), ignore_errors=True)


@pytest.fixture
def runtime_directory(monkeypatch):
    """A short XDG_RUNTIME_DIR of the test's own (ipc paths are limited to 107 bytes)."""
    folder = tempfile.mkdtemp(prefix="fb-launch-")
    monkeypatch.setenv("XDG_RUNTIME_DIR", folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def write_site(tmp_path, text: str):
    path = tmp_path / "site.toml"
    path.write_text(text)
    return str(path)


def test_plain_up_runs_everything_over_private_unix_sockets(built):
    config = built(Deployment(), {"source": "clip.mp4", "detect_workers": 2}, environ={})
    assert config.stages == STAGE_NAMES and config.status_service is None
    assert all(address.startswith("ipc://") for address in config.endpoints.as_dict().values() if address)
    assert up.listening_addresses(config) and all(address.startswith("ipc://")
                                                  for address in up.listening_addresses(config))
    assert config.capture.source == "clip.mp4" and config.detect_workers == 2
    assert stat.S_IMODE(run_directory_of(config.endpoints).stat().st_mode) == 0o700


def test_only_without_a_file_uses_unix_sockets_in_a_private_folder_both_halves_share(built, runtime_directory):
    environ = {"XDG_RUNTIME_DIR": runtime_directory}
    workers = built(Deployment(only="detect,queue,classify"), {"detect_workers": 3}, environ=environ)
    front = built(Deployment(only="capture,display"), {"source": "clip.mp4"}, environ=environ)
    assert workers.stages == ("detect", "queue", "classify") and workers.detect_workers == 3
    assert workers.status_service is None and front.capture.source == "clip.mp4"
    folder = os.path.join(runtime_directory, LOCAL_SITE_FOLDER_NAME)
    for link in DATA_LINKS:  # the same address in both runs: they find each other
        assert workers.endpoints.link(link) == front.endpoints.link(link) == f"ipc://{folder}/{link}"
    assert workers.endpoints.control != front.endpoints.control, "each supervisor keeps its own control link"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert up.listening_addresses(workers)[-2:] == [f"ipc://{folder}/faces_in", f"ipc://{folder}/faces_out"]
    assert [slot.frames_bind for slot in front.capture_slots()] == [f"ipc://{folder}/frames"]
    for config in (workers, front):
        assert all(address.startswith("ipc://") for address in up.listening_addresses(config))
        up.check_security(config)


def test_only_with_keys_or_insecure_keeps_the_loopback_ports_and_insecure_warns(built, tmp_path, runtime_directory,
                                                                                caplog):
    keys = tmp_path / "keys"
    generate_keys(keys)
    secured = built(Deployment(only="detect,queue,classify", keys_directory=str(keys)), {}, environ={})
    assert secured.endpoints.frames == "tcp://127.0.0.1:5550" and secured.binds["faces_in"] == "tcp://127.0.0.1:5551"
    assert secured.security.keys_directory == str(keys)
    open_ports = built(Deployment(only="queue", insecure=True), {}, environ={})
    assert open_ports.binds == {"faces_in": "tcp://127.0.0.1:5551", "faces_out": "tcp://127.0.0.1:5552"}
    assert all(is_local_endpoint(address) for address in up.listening_addresses(open_ports))
    with caplog.at_level(logging.WARNING):
        up.check_security(secured)
        assert "INSECURE" not in caplog.text
        up.check_security(open_ports)
    assert "INSECURE: listening on tcp://127.0.0.1:5551, tcp://127.0.0.1:5552 without CurveZMQ keys" in caplog.text


def test_a_socket_folder_that_is_not_privately_the_users_is_refused(runtime_directory):
    folder = os.path.join(runtime_directory, LOCAL_SITE_FOLDER_NAME)
    os.mkdir(folder, 0o700)
    os.chmod(folder, 0o755)
    with pytest.raises(UserError, match=r"fakeblock-only is open to other users \(mode drwxr-xr-x\); run `chmod 700"):
        build_config(Deployment(only="queue"), {}, environ={"XDG_RUNTIME_DIR": runtime_directory})
    os.rmdir(folder)
    os.symlink(runtime_directory, folder)
    with pytest.raises(UserError, match=r"fakeblock-only is not a folder \(a link\?\)"):
        build_config(Deployment(only="queue"), {}, environ={"XDG_RUNTIME_DIR": runtime_directory})
    os.unlink(folder)
    if os.getuid() != 0:
        return  # only root can give a folder to another user
    os.mkdir(folder, 0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(UserError, match=r"fakeblock-only belongs to another user \(uid 65534\)"):
        build_config(Deployment(only="queue"), {}, environ={"XDG_RUNTIME_DIR": runtime_directory})


def test_only_without_a_file_refuses_a_socket_path_too_long_and_tcp_placement_variables(tmp_path, runtime_directory):
    deep = tmp_path / ("x" * 80)
    deep.mkdir()
    with pytest.raises(UserError, match=r"longer than 107 bytes; set XDG_RUNTIME_DIR to a shorter folder"):
        build_config(Deployment(only="queue"), {}, environ={"XDG_RUNTIME_DIR": str(deep)})
    with pytest.raises(UserError, match=r"the environment sets where stages listen .* --keys DIR \(or --insecure\)"):
        build_config(Deployment(only="queue"), {},
                     environ={"XDG_RUNTIME_DIR": runtime_directory, "FAKEBLOCK_QUEUE_PORT": "6001"})


def test_a_unix_socket_still_listened_on_is_refused_and_a_stale_one_is_reused(built, runtime_directory):
    queue = built(Deployment(only="queue"), {}, environ={"XDG_RUNTIME_DIR": runtime_directory})
    endpoint, stale = queue.endpoints.faces_in, os.path.join(runtime_directory, "stale")
    with system_socket.socket(system_socket.AF_UNIX, system_socket.SOCK_STREAM) as leftover:
        leftover.bind(stale)  # closed without listening: the file stays, as a killed run leaves it
    context = zmq.Context()
    first, second = context.socket(zmq.PULL), context.socket(zmq.PULL)
    try:
        bind(first, endpoint)  # a queue of another run of this user
        assert ipc_in_use(endpoint)
        with pytest.raises(UserError, match=r"faces_in is already in use: another fakeblock of yours runs that stage"):
            up.check_security(queue)
        with pytest.raises(UserError, match=r"faces_in is already in use; is another fakeblock of yours running"):
            bind(second, endpoint)
        assert os.path.exists(stale) and not ipc_in_use(f"ipc://{stale}")
        bind(second, f"ipc://{stale}")
    finally:
        first.close(linger=0)
        second.close(linger=0)
        context.term()


def test_typed_options_win_over_the_file_and_the_environment(built, tmp_path):
    site = write_site(tmp_path, '[stages.capture]\nsource = "file.mp4"\nstream = "door"\n'
                                '[stages.detect]\nworkers = 2\n')
    environ = {"FAKEBLOCK_CAPTURE_STREAM": "hall"}
    config = built(Deployment(config_path=site), {"source": "typed.mp4"}, environ=environ)
    assert (config.capture.source, config.capture.stream, config.detect_workers) == ("typed.mp4", "hall", 2)
    assert config.status_service == "tcp://127.0.0.1:5557" and config.host == "127.0.0.1"


def test_a_capture_option_cannot_choose_among_several_cameras(tmp_path):
    with pytest.raises(UserError, match="--source cannot choose among the 2 capture stages"):
        build_config(Deployment(config_path=write_site(tmp_path, TWO_CAMERAS)), {"source": "x.mp4"}, environ={})


def test_capture_settings_reach_every_camera(built, tmp_path):
    config = built(Deployment(config_path=write_site(tmp_path, TWO_CAMERAS)), {"outputs": ("none",)}, environ={})
    config = up.with_capture_settings(config, send_frames_to_display=False)
    assert [(slot.index, slot.config.stream, slot.config.send_frames_to_display) for slot in config.captures] == \
        [(0, "a", False), (1, "b", False)]
    assert isinstance(config.captures[0], CaptureSlot) and config.display.expected_streams == 2


def test_a_display_away_from_its_cameras_judges_live_from_their_settings(built, tmp_path):
    site = write_site(tmp_path, '[stages.capture]\nhost = "192.0.2.5"\nsource = "rtsp://cam/1"\n')
    config = built(Deployment(config_path=site, only="display"), {}, environ={})
    assert up.check_captures(config, say=print).display.live
    lossless = built(Deployment(config_path=site, only="display"), {}, environ={"FAKEBLOCK_CAPTURE_SOURCE": "a.mp4"})
    assert not up.check_captures(lossless, say=print).display.live


def test_listening_beyond_loopback_needs_keys(built, tmp_path):
    site = write_site(tmp_path, '[stages.queue]\nbind = "0.0.0.0"\n')
    config = built(Deployment(config_path=site, only="queue"), {}, environ={})
    with pytest.raises(UserError, match=r"refusing to listen on tcp://0\.0\.0\.0:5551 without CurveZMQ keys"):
        up.check_security(config)
    keys = tmp_path / "keys"
    generate_keys(keys)
    up.check_security(built(Deployment(config_path=site, only="queue", keys_directory=str(keys)), {}, environ={}))
    up.check_security(built(Deployment(config_path=site, only="queue", insecure=True), {}, environ={}))


def test_missing_keys_fail_before_anything_starts(built, tmp_path):
    config = built(Deployment(keys_directory=str(tmp_path / "none")), {}, environ={})
    with pytest.raises(UserError, match=r"cannot read CurveZMQ key file .*server\.key_secret"):
        up.check_security(config)


# ---- the command line ---------------------------------------------------------------------

def invoke(*arguments):
    return CliRunner().invoke(app, [str(argument) for argument in arguments])


def test_keys_generate_writes_owner_only_secrets_and_refuses_to_overwrite(tmp_path):
    result = invoke("keys", "generate", tmp_path / "keys")
    assert result.exit_code == 0, result.output
    for name in ("server", "client"):
        assert stat.S_IMODE((tmp_path / "keys" / f"{name}.key_secret").stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "keys" / f"{name}.key").stat().st_mode) == 0o644
    assert (tmp_path / "keys" / "authorized_clients" / "client.key").exists()
    again = invoke("keys", "generate", tmp_path / "keys")
    assert again.exit_code == 2 and "already exists" in again.output and "Traceback" not in again.output
    laptop = invoke("keys", "generate", tmp_path / "keys", "--name", "laptop")
    assert laptop.exit_code == 0 and (tmp_path / "keys" / "authorized_clients" / "laptop.key").exists()
    assert invoke("keys", "generate", tmp_path / "keys", "--force").exit_code == 0


def test_up_refuses_a_public_bind_without_keys_in_one_line(tmp_path):
    site = write_site(tmp_path, f'[stages.capture]\nbind = "0.0.0.0"\nsource = "{MEDIA / "office-woman.mp4"}"\n')
    result = invoke("up", "--config", site, "--only", "capture", "--no-status")
    assert result.exit_code == 2, result.output
    assert "error: refusing to listen on tcp://0.0.0.0:5550 without CurveZMQ keys" in result.output
    assert "Traceback" not in result.output


def test_up_refuses_an_unknown_stage_and_a_bad_file(tmp_path):
    result = invoke("up", "--only", "detect,clasify", "--no-status")
    assert result.exit_code == 2 and "--only: unknown stage 'clasify'" in result.output
    result = invoke("up", "--config", write_site(tmp_path, "[stages.detekt]\n"), "--no-status")
    assert result.exit_code == 2 and "did you mean 'detect'" in result.output


def test_status_with_nothing_running_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    result = invoke("status")
    assert result.exit_code == 1 and "no fakeblock pipeline is running here" in result.output
    result = invoke("status", "--json")
    assert result.exit_code == 1 and result.output.strip() == '{"hosts": []}'


def test_status_of_a_site_shows_silent_hosts(tmp_path):
    site = write_site(tmp_path, '[supervisor]\nport = 1\n[stages.detect]\nhost = ["127.0.0.1", "127.0.0.9"]\n')
    result = invoke("status", "--config", site, "--timeout", "0.3")
    assert result.exit_code == 1 and result.output.count("no answer") == 2



def test_status_with_missing_keys_is_one_line(tmp_path):
    site = write_site(tmp_path, f'[site]\nkeys = "{tmp_path / "none"}"\n')
    result = invoke("status", "--config", site)
    assert result.exit_code == 2 and "cannot read CurveZMQ key file" in result.output
    assert "Traceback" not in result.output

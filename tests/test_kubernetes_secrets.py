"""The keys and the metrics token on Kubernetes: the docs page's Secrets, the pods' volume, the init container's copy.

``kubectl create secret generic --from-file=DIR`` takes only a folder's top-level files,
so docs/kubernetes.md names each file of ``fakeblock keys generate keys``; the pods' projected Secret
volume lays them out again under ``keys/`` (``items``), with the metrics token at
``metrics/token``, and an init container copies both into the pod's private in-memory
run folder.  Here the kubelet's part is played on real keys (the volume's timestamped
folder behind ``..data``, its root open to all, files ``defaultMode``), the init
container's own script runs on it, and the project's key loader and a CURVE handshake
check the result.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import zmq

from fakeblock.common.security.access import Security, SecurityConfig, check_libzmq
from fakeblock.common.security.keys import check_private, generate_keys
from tests.manifests import BASE, README_FOLDER, Pod, assemble, pods, readme_secret

KEY_SECRET, TOKEN_SECRET, SECRETS_VOLUME = "fakeblock-keys", "fakeblock-metrics-token", "secrets"
SCRIPT_TIMEOUT_S = 30
HANDSHAKE_TIMEOUT_MS = 5000
TIMESTAMPED = "..2026_01_01_00_00_00.000000000"  # where the kubelet writes a Secret volume's files


def pod_with_keys() -> Pod:
    return pods(assemble(BASE))["queue"]


def mount_projected(volume: dict, secrets: dict[str, dict[str, bytes]], root: Path) -> None:
    """Lay out a projected Secret volume as the kubelet does: every item at its path under a
    timestamped folder, ``..data`` pointing at it, each top-level name a link through ``..data``."""
    projected = volume["projected"]
    paths = []
    for source in projected["sources"]:
        secret = source["secret"]
        assert secret["name"] in secrets, f"docs/kubernetes.md makes no Secret {secret['name']}"
        for item in secret["items"]:
            data = secrets[secret["name"]]
            assert item["key"] in data, f"{secret['name']} has no key {item['key']}: the pod would not start"
            path = root / TIMESTAMPED / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data[item["key"]])
            path.chmod(item.get("mode", projected["defaultMode"]))
            paths.append(Path(item["path"]))
    (root / "..data").symlink_to(TIMESTAMPED)
    for top in {path.parts[0] for path in paths}:
        (root / top).symlink_to(f"..data/{top}")
    root.chmod(0o1777)  # a Secret volume's root is a tmpfs open to all (sticky)


def run_init_container(pod: Pod, folders: dict[str, Path]) -> None:
    """The init container's script, with each of its mount paths at ``folders[volume name]``."""
    (init,) = pod.spec["initContainers"]
    assert init["command"][:2] == ["sh", "-c"]
    script = init["command"][2]
    for mount in sorted(init["volumeMounts"], key=lambda mount: -len(mount["mountPath"])):
        script = script.replace(mount["mountPath"], str(folders[mount["name"]]))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def pod_run_folder(tmp_path):
    """(folder ``fakeblock keys generate`` made, the pod's run folder after its init container ran twice)."""
    pod = pod_with_keys()
    generated = tmp_path / README_FOLDER
    generate_keys(generated)
    secrets = {name: {key: (tmp_path / path).read_bytes() for key, path in readme_secret(name).items()}
               for name in (KEY_SECRET, TOKEN_SECRET)}
    folders = {SECRETS_VOLUME: tmp_path / "secrets-volume", "run": tmp_path / "run"}
    for folder in folders.values():
        folder.mkdir()
    mount_projected(pod.volume(SECRETS_VOLUME), secrets, folders[SECRETS_VOLUME])
    # An init container runs again when its pod restarts; the run folder is still there then.
    run_init_container(pod, folders)
    run_init_container(pod, folders)
    return generated, folders["run"]


def in_run_folder(pod: Pod, path: str, run_folder: Path) -> Path:
    """Where the pod's ``path`` is in the test's copy of its run folder (it must be on that volume)."""
    mount = pod.mount_of(path)
    assert mount["name"] == "run", f"{path} is not in the folder the init container fills"
    return run_folder / Path(path).relative_to(mount["mountPath"])


@pytest.fixture
def pod_keys(pod_run_folder):
    """(folder ``fakeblock keys generate`` made, the key folder the pod's stages read)."""
    generated, run_folder = pod_run_folder
    keys = tomllib.loads((BASE / "site.toml").read_text())["site"]["keys"]
    return generated, in_run_folder(pod_with_keys(), keys, run_folder)


def test_readme_secret_holds_every_key_file_of_keys_generate(tmp_path):
    generate_keys(tmp_path / README_FOLDER)
    key_files = {str(path.relative_to(tmp_path)) for path in (tmp_path / README_FOLDER).rglob("*.key*")}
    assert set(readme_secret(KEY_SECRET).values()) == key_files


def test_the_pods_key_folder_is_the_generated_one_and_private(pod_keys):
    generated, copied = pod_keys
    files = sorted(path.relative_to(generated) for path in generated.rglob("*.key*"))
    assert sorted(path.relative_to(copied) for path in copied.rglob("*") if path.is_file()) == files
    for relative in files:
        assert (copied / relative).read_bytes() == (generated / relative).read_bytes()
        assert (copied / relative).stat().st_mode & 0o777 == 0o600, relative
    for folder in (copied, copied / "authorized_clients"):
        assert folder.stat().st_mode & 0o777 == 0o700 and not folder.is_symlink()
    check_private(copied)


def test_the_pods_keys_load_without_warnings_and_shake_hands(pod_keys, caplog):
    _generated, copied = pod_keys
    check_libzmq()
    caplog.set_level(logging.WARNING)
    server, client = Security(SecurityConfig(str(copied))), Security(SecurityConfig(str(copied)))
    server.check_keys(server=True, client=True)
    context = zmq.Context()
    sockets = []
    try:
        server.start(context)
        pull = context.socket(zmq.PULL)
        push = context.socket(zmq.PUSH)
        sockets += [pull, push]
        server.server(pull)
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        client.client(push)
        push.setsockopt(zmq.SNDTIMEO, HANDSHAKE_TIMEOUT_MS)
        push.connect(f"tcp://127.0.0.1:{port}")
        push.send(b"hello")
        assert pull.poll(HANDSHAKE_TIMEOUT_MS), "no message through CURVE with the pod's keys"
        assert pull.recv() == b"hello"
    finally:
        for socket in sockets:
            socket.close(linger=0)
        server.stop()
        context.term()
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING], caplog.text


def test_every_pod_gets_the_keys_the_same_way():
    reference = pod_with_keys()
    for name, pod in pods(assemble(BASE)).items():
        assert pod.spec["initContainers"] == reference.spec["initContainers"], name
        assert pod.volume(SECRETS_VOLUME) == reference.volume(SECRETS_VOLUME), name
        # The stages only read what the init container wrote.
        assert [mount.get("readOnly") for mount in pod.mounts().values() if mount["name"] == "run"] == [True], name


def test_the_init_container_needs_only_the_shell_tools_of_the_image():
    # python:3.11-slim has sh, cp, chmod and rm; the script uses nothing else.
    (init,) = pod_with_keys().spec["initContainers"]
    words = {line.split()[0] for line in init["command"][2].splitlines() if line.strip()}
    assert words <= {"set", "umask", "rm", "cp", "chmod"}
    assert all(shutil.which(tool) for tool in ("sh", "cp", "chmod", "rm"))


def test_the_pods_metrics_token_is_the_generated_one_and_private(pod_run_folder):
    generated, run_folder = pod_run_folder
    (_key, path), = readme_secret(TOKEN_SECRET).items()
    assert Path(path).parent.name == README_FOLDER and (generated / Path(path).name).is_file(), \
        f"`fakeblock keys generate` writes no {path}"
    token_file = tomllib.loads((BASE / "site.toml").read_text())["supervisor"]["metrics_token_file"]
    copied = in_run_folder(pod_with_keys(), token_file, run_folder)
    assert copied.read_bytes() == (generated / Path(path).name).read_bytes()
    assert copied.stat().st_mode & 0o777 == 0o600 and copied.parent.stat().st_mode & 0o777 == 0o700

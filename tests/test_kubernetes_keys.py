"""The CurveZMQ key folder on Kubernetes: README's Secret, the pods' volume, the init container's copy.

``kubectl create secret generic --from-file=DIR`` takes only a folder's top-level files,
so README names each file of ``fakeblock keys generate keys``; the pods' Secret volume
lays them out again under ``keys/`` (``items``), and an init container copies that folder
into the pod's private in-memory run folder.  Here the kubelet's part is played on real
keys (the Secret volume's timestamped folder behind ``..data``, root open to all, files
``defaultMode``), the init container's own script runs on it, and the project's key
loader and a CURVE handshake check the result.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import zmq

from fakeblock.common.keys import check_private, generate_keys
from fakeblock.common.security import Security, SecurityConfig, check_libzmq
from tests.manifests import BASE, README_FOLDER, Pod, assemble, pods, readme_secret

KEY_SECRET, KEY_VOLUME = "fakeblock-keys", "keys-secret"
SCRIPT_TIMEOUT_S = 30
HANDSHAKE_TIMEOUT_MS = 5000
TIMESTAMPED = "..2026_01_01_00_00_00.000000000"  # where the kubelet writes a Secret volume's files


def pod_with_keys() -> Pod:
    pod = pods(assemble(BASE))["queue"]
    assert pod.volume(KEY_VOLUME)["secret"]["secretName"] == KEY_SECRET
    return pod


def mount_secret(volume: dict, data: dict[str, bytes], root: Path) -> None:
    """Lay out a Secret volume as the kubelet does: every item at its path under a timestamped
    folder, ``..data`` pointing at it, each top-level name a link through ``..data``."""
    secret = volume["secret"]
    for item in secret["items"]:
        assert item["key"] in data, f"the Secret has no key {item['key']}: the pod would not start"
        path = root / TIMESTAMPED / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[item["key"]])
        path.chmod(item.get("mode", secret["defaultMode"]))
    (root / "..data").symlink_to(TIMESTAMPED)
    for top in {Path(item["path"]).parts[0] for item in secret["items"]}:
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
def pod_keys(tmp_path):
    """(generated key folder, the key folder the pod's stages read) after the init container ran twice."""
    pod = pod_with_keys()
    generated = tmp_path / README_FOLDER
    generate_keys(generated)
    data = {key: (tmp_path / path).read_bytes() for key, path in readme_secret(KEY_SECRET).items()}
    folders = {KEY_VOLUME: tmp_path / "secret-volume", "run": tmp_path / "run"}
    for folder in folders.values():
        folder.mkdir()
    mount_secret(pod.volume(KEY_VOLUME), data, folders[KEY_VOLUME])
    # An init container runs again when its pod restarts; the run folder is still there then.
    run_init_container(pod, folders)
    run_init_container(pod, folders)
    keys = tomllib.loads((BASE / "site.toml").read_text())["site"]["keys"]
    mount = pod.mount_of(keys)
    assert mount["name"] == "run", "the stages read the keys the init container copied"
    return generated, folders["run"] / Path(keys).relative_to(mount["mountPath"])


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
        assert pod.volume(KEY_VOLUME) == reference.volume(KEY_VOLUME), name


def test_the_init_container_needs_only_the_shell_tools_of_the_image():
    # python:3.11-slim has sh, cp, chmod and rm; the script uses nothing else.
    (init,) = pod_with_keys().spec["initContainers"]
    words = {line.split()[0] for line in init["command"][2].splitlines() if line.strip()}
    assert words <= {"set", "umask", "rm", "cp", "chmod"}
    assert all(shutil.which(tool) for tool in ("sh", "cp", "chmod", "rm"))

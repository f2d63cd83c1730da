"""Three machines in Linux network namespaces: a site split over A (capture), B (detect,
queue, classify) and C (display), with CurveZMQ keys, plus an intruder in D.

The namespaces are joined by a bridge that lives in a fifth namespace (the hub), so the
test adds no interface to the machine it runs on and its private /24 exists only inside
namespaces it created.  Needs root (CI runs it so); elsewhere it skips, saying why.
Every namespace and every process group the test makes is removed in a finalizer, also
when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from fakeblock.common.security.keys import generate_keys
from tests.helpers import MEDIA, OFFICE_FRAMES, fakeblock, kill_started, read_results, shared_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPOSITORY = Path(__file__).resolve().parents[1]
SUBNET_PREFIX = "10.231.0"  # only ever configured inside this test's namespaces
MACHINES = {"a": 1, "b": 2, "c": 3, "d": 4}  # namespace letter -> last octet of its address
COMMAND_TIMEOUT_S = 20
RUN_TIMEOUT_S = 300
STOP_TIMEOUT_S = 60
INTRUDER_WAIT_S = 3.0


def address(machine: str) -> str:
    """The address of a namespace on the test's private bridge."""
    return f"{SUBNET_PREFIX}.{MACHINES[machine]}"


def run_ip(*arguments: str) -> None:
    """Run one `ip` command, failing with its message."""
    completed = subprocess.run(["ip", *arguments], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if completed.returncode != 0:
        raise RuntimeError(f"ip {' '.join(arguments)}: {completed.stderr.strip()}")


def netns_permitted(probe_name: str) -> str | None:
    """None when this process may create network namespaces, else why not."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    try:
        run_ip("netns", "add", probe_name)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        return f"cannot create a network namespace (needs root): {error}"
    run_ip("netns", "delete", probe_name)
    return None


class Namespaces:
    """A hub namespace with a bridge, and one namespace per machine wired to it by a veth pair."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.hub = f"fb{run_id}hub"
        self.created: list[str] = []

    def name(self, machine: str) -> str:
        return f"fb{self.run_id}{machine}"

    def build(self) -> None:
        self._add(self.hub)
        run_ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        run_ip("-n", self.hub, "link", "set", "br0", "up")
        for machine in MACHINES:
            self._add_machine(machine)

    def _add(self, namespace: str) -> None:
        run_ip("netns", "add", namespace)
        self.created.append(namespace)
        run_ip("-n", namespace, "link", "set", "lo", "up")

    def _add_machine(self, machine: str) -> None:
        namespace, hub_end = self.name(machine), f"v{machine}"
        self._add(namespace)
        # Both ends are made inside namespaces of this test: the host's own stack is never touched.
        run_ip("-n", self.hub, "link", "add", hub_end, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        run_ip("-n", self.hub, "link", "set", hub_end, "master", "br0")
        run_ip("-n", self.hub, "link", "set", hub_end, "up")
        run_ip("-n", namespace, "addr", "add", f"{address(machine)}/24", "dev", "eth0")
        run_ip("-n", namespace, "link", "set", "eth0", "up")

    def delete(self) -> None:
        """Delete every namespace made (their veth ends and the bridge go with them)."""
        for namespace in reversed(self.created):
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, timeout=COMMAND_TIMEOUT_S)
        self.created.clear()


class Machines:
    """Processes started in the namespaces, each in its own process group, and their logs."""

    def __init__(self, namespaces: Namespaces, tmp_path: Path):
        self.namespaces, self.tmp_path = namespaces, tmp_path
        # A private, short runtime folder: ipc paths are limited to about 100 bytes.
        self.runtime_directory = tempfile.mkdtemp(prefix="fb-netns-")
        self.environ = dict(os.environ, XDG_RUNTIME_DIR=self.runtime_directory)
        self.processes: list[subprocess.Popen] = []

    def start(self, machine: str | None, name: str, command: list[str]) -> subprocess.Popen:
        """Start ``command`` inside ``machine``'s namespace (None: this machine's), logging to ``<name>.log``."""
        log_path = self.tmp_path / f"{name}.log"
        log = open(log_path, "w")  # noqa: SIM115 - closed in close()
        prefix = ["ip", "netns", "exec", self.namespaces.name(machine)] if machine else []
        process = subprocess.Popen([*prefix, *command],
                                   stdout=log, stderr=subprocess.STDOUT, env=self.environ,
                                   start_new_session=True, cwd=REPOSITORY)
        process.log_path, process.log = log_path, log
        self.processes.append(process)
        return process

    def run(self, machine: str, command: list[str], timeout_s: float = 60) -> subprocess.CompletedProcess:
        """Run ``command`` inside ``machine``'s namespace to completion."""
        return subprocess.run(["ip", "netns", "exec", self.namespaces.name(machine), *command],
                              capture_output=True, text=True, env=self.environ, timeout=timeout_s, cwd=REPOSITORY)

    def close(self) -> None:
        kill_started(self.processes, self.runtime_directory)


@pytest.fixture
def machines(tmp_path):
    run_id = uuid.uuid4().hex[:6]
    reason = netns_permitted(f"fb{run_id}probe")
    if reason:
        pytest.skip(reason)
    namespaces = Namespaces(run_id)
    made = None
    try:
        namespaces.build()
        made = Machines(namespaces, tmp_path)
        yield made
    finally:
        if made is not None:
            made.close()
        namespaces.delete()


def site_text(video: Path, results: Path, keys: Path | None) -> str:
    """Capture on A, detect + queue + classify on B, display on C."""
    return "\n".join([
        f'[site]\nkeys = "{keys}"\n' if keys else "",
        "[supervisor]\nport = 5557\n",
        f'[stages.capture]\nhost = "{address("a")}"\nport = 5550\nsource = "{video}"\nstream = "office-woman"\n',
        # Full-frame detection keeps the replay running long enough (about 20 s) for the
        # intruders below to try it while it streams; tracking would finish it in 5 s.
        f'[stages.detect]\nhost = "{address("b")}"\nworkers = 1\ntracking = false\n',
        f'[stages.queue]\nhost = "{address("b")}"\nports = [5551, 5552]\n',
        f'[stages.classify]\nhost = "{address("b")}"\n',
        f'[stages.display]\nhost = "{address("c")}"\nports = [5553, 5554]\noutputs = ["none"]\n'
        f'results = "{results}"\n',
    ])


def summary(lines: list[dict]) -> list[tuple]:
    """What a user compares between two runs: frame numbers, face boxes and top emotions."""
    return [(line["frame"], [(tuple(face["box"]), face["emotion"]) for face in line["faces"]]) for line in lines]


def one_host_results(machines: Machines, tmp_path: Path, video: Path) -> list[dict]:
    """The reference: the whole pipeline on this machine, over ipc."""
    results = tmp_path / "one-host.jsonl"
    process = machines.start(None, "one-host", fakeblock("up", "--no-status", "--source", str(video),
                                                         "--display", "none", "--results", str(results),
                                                         "--tracking", "off"))
    assert process.wait(RUN_TIMEOUT_S) == 0, process.log_path.read_text()[-3000:]
    return read_results(results)


def wait_for_lines(path: Path, count: int, processes: list[subprocess.Popen], timeout_s: float) -> None:
    """Wait until ``path`` has ``count`` lines, failing early when a supervisor exits with an error."""
    deadline_s = time.monotonic() + timeout_s
    while not (path.exists() and len(path.read_text().splitlines()) >= count):
        for process in processes:
            assert process.poll() in (None, 0), process.log_path.read_text()[-3000:]
        assert time.monotonic() < deadline_s, f"fewer than {count} results after {timeout_s} s"
        time.sleep(0.2)


def intrude(machines: Machines, keys: Path, client: str, server_keys: Path, pull: bool) -> dict:
    """Run tests.intruder in D against B's and C's status services (and, with ``pull``, A's frames and B's
    faces_out)."""
    command = [sys.executable, "-m", "tests.intruder", "--keys", str(keys), "--client", client,
               "--server-keys", str(server_keys), "--wait-s", str(INTRUDER_WAIT_S),
               "--status", f"tcp://{address('b')}:5557", "--status", f"tcp://{address('c')}:5557"]
    if pull:
        command += ["--ready", f"tcp://{address('a')}:5550", "--pull", f"tcp://{address('b')}:5552"]
    completed = machines.run("d", command, timeout_s=INTRUDER_WAIT_S + 30)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def start_site(machines: Machines, site_file: Path, keys: Path) -> dict[str, subprocess.Popen]:
    """One supervisor per machine, workers first (the others wait for them anyway)."""
    shares = {"b": "detect,queue,classify", "c": "display", "a": "capture"}
    return {machine: machines.start(machine, f"up-{machine}", fakeblock(
        "up", "--no-status", "--config", str(site_file), "--only", only, "--keys", str(keys)))
        for machine, only in shares.items()}


def test_three_namespaces_replay_like_one_host_and_strangers_get_nothing(machines, tmp_path):
    video = shared_file(MEDIA / "office-woman.mp4")
    reference = one_host_results(machines, tmp_path, video)
    assert len(reference) == OFFICE_FRAMES
    keys, stranger_keys = tmp_path / "keys", tmp_path / "stranger-keys"
    generate_keys(keys)
    generate_keys(stranger_keys, names=("server", "stranger"))
    results = tmp_path / "three-hosts.jsonl"
    site_file = tmp_path / "site.toml"
    site_file.write_text(site_text(video, results, keys))
    supervisors = start_site(machines, site_file, keys)
    wait_for_lines(results, 30, list(supervisors.values()), timeout_s=120)
    # The stranger knows the addresses and the server's public key, but its key is not allowed.
    stranger = intrude(machines, stranger_keys, "stranger", keys, pull=True)
    assert stranger == {"pulled": 0, "answers": 0}, stranger
    # The same requests with an allowed key are answered: the silence above is the allow-list,
    # not a broken network.
    assert intrude(machines, keys, "client", keys, pull=False)["answers"] == 2
    assert supervisors["c"].poll() is None, "the replay ended before the intruders tried it: the test proves nothing"
    for machine in ("c", "a"):
        assert supervisors[machine].wait(RUN_TIMEOUT_S) == 0, supervisors[machine].log_path.read_text()[-3000:]
    assert supervisors["b"].poll() is None, "a host of workers serves until it is stopped"
    supervisors["b"].send_signal(signal.SIGINT)
    assert supervisors["b"].wait(STOP_TIMEOUT_S) == 130  # Ctrl-C: 128 + SIGINT
    assert summary(read_results(results)) == summary(reference)
    assert not any("Traceback" in process.log_path.read_text() for process in supervisors.values())


def test_without_keys_a_namespace_address_is_refused_in_one_line(machines, tmp_path):
    site_file = tmp_path / "site.toml"
    site_file.write_text(site_text(tmp_path / "clip.mp4", tmp_path / "results.jsonl", None))
    completed = machines.run("b", fakeblock("up", "--no-status", "--config", str(site_file),
                                            "--only", "detect,queue,classify"))
    output = (completed.stdout + completed.stderr).strip()
    assert completed.returncode == 2, output
    assert len(output.splitlines()) == 1 and "Traceback" not in output, output
    assert f"refusing to listen on tcp://{address('b')}" in output and "keys" in output

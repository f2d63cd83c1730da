"""Another local user against a keyless one-machine split: two `fakeblock up --only` runs, no site file.

The workers (detect, queue, classify) and the front (capture, display) of one user find
each other through Unix sockets in that user's private folder.  While the replay runs,
``nobody`` (uid 65534) tries every socket file the two supervisors made and the old
loopback TCP ports 5550-5554: a plain connect, a ZeroMQ PULL for faces, a DEALER that
says it is a detect worker ready for frames, and PUSHes of forged ends of stream
(``tests/local_intruder.py``).  The runtime folder is open
to everyone, as /tmp is, and the pipeline runs with umask 0, so its socket files are open
to everyone too: only the modes of fakeblock's folders keep nobody out.  A bait beside the
pipeline, which nobody may reach, shows that the same intruder does read and inject where
it is let in.  Needs root (to act as nobody); elsewhere it skips, saying why.  Every wait
has a timeout and checks that the supervisors are alive; every process group is killed
at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import zmq

from fakeblock.common import wire
from fakeblock.common.endpoints import DATA_LINKS, LOCAL_SITE_FOLDER_NAME, tcp_endpoints
from tests.helpers import MEDIA, OFFICE_FRAMES, fakeblock, kill_started, orphans_of, read_results, shared_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
INTRUDER = Path(__file__).resolve().parent / "local_intruder.py"
NOBODY_ID = 65534
NOBODY_ENVIRONMENT = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
RESULTS_BEFORE_INTRUDING = 30
FORGED_FRAME_COUNT_STEP = 8
START_TIMEOUT_S = 200
RUN_TIMEOUT_S = 400
STOP_TIMEOUT_S = 60
INTRUDER_WAIT_S = 3.0
INTRUDER_TIMEOUT_S = 60
BAIT_POLL_MS = 20
BAIT_JOIN_TIMEOUT_S = 10


def as_nobody(command: list[str]) -> list[str]:
    """``command`` run as nobody, with nobody's group and no other groups."""
    return ["setpriv", "--reuid", str(NOBODY_ID), "--regid", str(NOBODY_ID), "--clear-groups", "--", *command]


def intruder(*arguments: str, nobody: bool) -> dict[str, dict]:
    """Run tests/local_intruder.py (as nobody, or as this user) and return its report."""
    command = [sys.executable, str(INTRUDER), *arguments]
    completed = subprocess.run(as_nobody(command) if nobody else command, capture_output=True, text=True,
                               env=NOBODY_ENVIRONMENT, cwd="/", timeout=INTRUDER_TIMEOUT_S)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def why_not_as_nobody() -> str | None:
    """None when this test can run the intruder as nobody, else why not."""
    if os.getuid() != 0:
        return "needs root to run a process as another user (nobody, uid 65534)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    try:
        intruder("--probe-only", nobody=True)
    except (AssertionError, OSError, subprocess.SubprocessError, ValueError) as error:
        return f"nobody cannot run {INTRUDER.name} with {sys.executable} and pyzmq: {error}"
    return None


def endpoint_arguments(endpoints: list[str]) -> list[str]:
    return [argument for endpoint in endpoints for argument in ("--endpoint", endpoint)]


def socket_files(folder: str | Path) -> list[Path]:
    """Every Unix socket file under ``folder``."""
    return sorted(path for path in Path(folder).rglob("*") if stat.S_ISSOCK(path.lstat().st_mode))


def tcp_listeners(pids: list[int]) -> list[str]:
    """Local addresses (as /proc/net/tcp shows them) of the listening TCP sockets these processes hold."""
    inodes = set()
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue  # it exited meanwhile
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    listening = "0A"
    return [fields[1] for table in ("/proc/net/tcp", "/proc/net/tcp6") if Path(table).exists()
            for fields in (line.split() for line in Path(table).read_text().splitlines()[1:])
            if fields[3] == listening and fields[9] in inodes]


def log_of(process: subprocess.Popen) -> str:
    return process.log_path.read_text()[-4000:]


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for_lines(path: Path, count: int, processes: list[subprocess.Popen], timeout_s: float) -> None:
    """Wait until ``path`` has ``count`` lines, failing early when a supervisor exits."""
    deadline_s = time.monotonic() + timeout_s
    while line_count(path) < count:
        for process in processes:
            assert process.poll() is None, log_of(process)
        assert time.monotonic() < deadline_s, f"fewer than {count} results after {timeout_s} s"
        time.sleep(0.2)


def wait_for_exit(process: subprocess.Popen, others: list[subprocess.Popen], timeout_s: float) -> int:
    """``process``'s exit code, failing early when one of ``others`` (which must keep running) exits."""
    deadline_s = time.monotonic() + timeout_s
    while process.poll() is None:
        for other in others:
            assert other.poll() is None, log_of(other)
        assert time.monotonic() < deadline_s, f"still running after {timeout_s} s: {log_of(process)}"
        time.sleep(0.2)
    return process.returncode


class Bait:
    """A bound PUSH, PULL and ROUTER that every user may reach: what the intruder does where it is let in.

    A thread keeps offering a message on ``out``, collects what arrives on ``in`` and, as a
    capture deals frames to a ready detect worker, answers whatever a peer says on ``lease``.
    """

    def __init__(self, folder: Path):
        folder.mkdir()
        folder.chmod(0o777)
        self.context = zmq.Context()
        self.out, self.into = self.context.socket(zmq.PUSH), self.context.socket(zmq.PULL)
        self.lease = self.context.socket(zmq.ROUTER)
        self.endpoints = [f"ipc://{folder / 'out'}", f"ipc://{folder / 'in'}", f"ipc://{folder / 'lease'}"]
        for socket, endpoint in zip((self.out, self.into, self.lease), self.endpoints, strict=True):
            socket.linger = 0
            socket.bind(endpoint)
            Path(endpoint.removeprefix("ipc://")).chmod(0o777)
        self.received: list = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="bait", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                self.out.send(b"bait", zmq.NOBLOCK)
            except zmq.Again:  # nobody connected yet
                pass
            if self.into.poll(BAIT_POLL_MS):
                self.received.append(wire.decode(self.into.recv_multipart()))
            while self.lease.poll(0):
                peer, *_said = self.lease.recv_multipart()
                self.lease.send_multipart([peer, b"bait"])

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(BAIT_JOIN_TIMEOUT_S)
        for socket in (self.out, self.into, self.lease):
            socket.close(linger=0)
        self.context.term()


class Machine:
    """One user's `fakeblock up` runs on this machine, with umask 0, in a runtime folder open to all like /tmp.

    With umask 0 every socket file is open to everyone, so only the modes of fakeblock's
    own folders can keep another user out.
    """

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.runtime_directory = tempfile.mkdtemp(prefix="fb-only-")  # short: ipc paths are limited
        os.chmod(self.runtime_directory, 0o1777)
        self.environ = dict(os.environ, XDG_RUNTIME_DIR=self.runtime_directory)
        self.processes: list[subprocess.Popen] = []

    def up(self, name: str, *arguments: str) -> subprocess.Popen:
        """Start `fakeblock up` in a process group of its own, logging to ``<name>.log``."""
        log = open(self.tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed in close()
        process = subprocess.Popen(fakeblock("up", "--no-status", *arguments), stdout=log, stderr=subprocess.STDOUT,
                                   env=self.environ, start_new_session=True, cwd=self.tmp_path, umask=0)
        process.log_path, process.log = self.tmp_path / f"{name}.log", log
        self.processes.append(process)
        return process

    def close(self) -> None:
        kill_started(self.processes, self.runtime_directory)


@pytest.fixture
def machine(tmp_path):
    reason = why_not_as_nobody()
    if reason:
        pytest.skip(reason)
    made = Machine(tmp_path)
    yield made
    made.close()


def forged_ends(stream: str, first_count: int) -> list[str]:
    """Ends of stream that would each cut the replay short if the display took one (hex frames)."""
    return [",".join(frame.hex() for frame in wire.encode(wire.EndOfStream(stream, count)))
            for count in range(first_count, OFFICE_FRAMES, FORGED_FRAME_COUNT_STEP)]


def test_another_local_user_can_neither_read_nor_feed_a_keyless_only_split(machine):
    video = shared_file(MEDIA / "office-woman.mp4")
    results = machine.tmp_path / "results.jsonl"
    # Full-frame detection keeps the replay running long enough for the intruder to try it.
    workers = machine.up("workers", "--only", "detect,queue,classify", "--tracking", "off")
    front = machine.up("front", "--only", "capture,display", "--source", str(video), "--display", "none",
                       "--results", str(results))
    supervisors = [front, workers]
    wait_for_lines(results, RESULTS_BEFORE_INTRUDING, supervisors, START_TIMEOUT_S)

    folder = Path(machine.runtime_directory) / LOCAL_SITE_FOLDER_NAME
    sockets = socket_files(machine.runtime_directory)
    assert {folder / link for link in DATA_LINKS} <= set(sockets), sockets
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in sockets} == {0o777}, "umask 0: only folders guard them"
    pids = [pid for supervisor in supervisors for pid in (supervisor.pid, *orphans_of(supervisor.pid))]
    assert tcp_listeners(pids) == [], "a keyless --only without a site file listens on no TCP port"
    ipc = [f"ipc://{path}" for path in sockets]
    tcp = [tcp_endpoints().link(link) for link in DATA_LINKS]
    own = intruder(*endpoint_arguments(ipc), "--probe-only", nobody=False)
    assert {outcome["probe"] for outcome in own.values()} == {"connected"}, own  # live sockets, open to their user

    bait = Bait(Path(machine.runtime_directory) / "bait")
    try:
        forged = forged_ends(video.stem, line_count(results))
        ready = ",".join(frame.hex() for frame in wire.encode(wire.Ready("intruder")))
        stranger = intruder(*endpoint_arguments([*ipc, *tcp, *bait.endpoints]),
                            *[argument for message in forged for argument in ("--message", message)],
                            "--ready", ready, "--wait-s", str(INTRUDER_WAIT_S), nobody=True)
    finally:
        bait.close()
    for endpoint in ipc:
        assert stranger[endpoint] == {"probe": "EACCES", "pulled": 0, "pushed": 0, "dealt": 0}, endpoint
    for endpoint in tcp:
        assert stranger[endpoint] == {"probe": "ECONNREFUSED", "pulled": 0, "pushed": 0, "dealt": 0}, endpoint
    # Where nobody may enter, the same intruder reads, injects and is dealt to: the refusals
    # above are the folders' doing.
    assert stranger[bait.endpoints[0]]["pulled"] > 0 and stranger[bait.endpoints[1]]["pushed"] > 0, stranger
    assert stranger[bait.endpoints[2]]["dealt"] > 0, stranger
    assert any(isinstance(message, wire.EndOfStream) for message in bait.received)
    assert front.poll() is None, "the replay ended before the intruder tried it: the test proves nothing"

    assert wait_for_exit(front, [workers], RUN_TIMEOUT_S) == 0, log_of(front)
    assert [line["frame"] for line in read_results(results)] == list(range(OFFICE_FRAMES))
    assert workers.poll() is None, "a host of workers serves until it is stopped"
    workers.send_signal(signal.SIGINT)
    assert workers.wait(STOP_TIMEOUT_S) == 130, log_of(workers)  # Ctrl-C: 128 + SIGINT
    time.sleep(0.5)
    assert orphans_of(front.pid) == [] and orphans_of(workers.pid) == []
    assert not any("Traceback" in process.log_path.read_text() for process in supervisors)

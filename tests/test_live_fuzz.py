"""Seeded, structure-aware fuzzing of a running replay over every socket that takes input.

A clean replay of office-woman.mp4 gives the reference results. A second replay runs while
a fuzzer sends hostile messages to every socket a peer can write to: the queue's
``faces_in``, the display's ``results`` and ``display_frames``, the capture's ``frames``
(where detect workers say they are ready), the supervisor's ``status`` link and its status
service. The messages are the wire fuzzer's mutations
(type-confused fields, dropped and extra keys, extra parts, up to 70 times the parts,
cut parts) plus forged well-formed ones: ends of stream below the frames written, ends
and results for streams no capture announced, results for frames already written, and
oversized messages. Every process must survive, the results must be byte-identical to
the clean run and the pipeline's memory must stay under ``MAX_PIPELINE_RSS_BYTES``.

What no check can refuse without authentication is left out: a forged announcement or a
result for a future frame of the real stream looks exactly like the real thing. Private
sockets (and CURVE keys across machines) keep such peers out; see test_private_only.py.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from fakeblock.common import wire
from tests.helpers import (
    MEDIA,
    fakeblock,
    fuzz_generator,
    kill_if_running,
    line_count,
    orphans_of,
    reproduce_with,
    shared_file,
    wait_for_no_orphans,
    wait_until,
)
from tests.test_wire_fuzz import mutate, samples

DEFAULT_SEED = 20261202  # FAKEBLOCK_FUZZ_SEED overrides it
MESSAGES = 12_000
START_AFTER_LINES = 40  # fuzz once the replay is well under way (forged results are for written frames)
MAX_PIPELINE_RSS_BYTES = 2_500_000_000  # every process of the replay together
REPLAY_TIMEOUT_S = 240
SOCKETS = ("faces_in", "results", "display_frames", "frames", "status", "status-service")
DEALER_SOCKETS = ("frames", "status-service")  # the others take PUSH peers
STREAM = "office-woman"


def run_replay(video: Path, results: Path, runtime_directory: Path, *extra: str) -> subprocess.Popen:
    """``fakeblock up`` on ``video``; its log goes to ``results`` + ``.log`` (a pipe nobody
    reads during the run would fill with the warnings hostile messages bring, and block it)."""
    environ = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_directory))
    with open(f"{results}.log", "w") as log:
        return subprocess.Popen(fakeblock("up", "--source", str(video), "--display", "none", "--results",
                                          str(results), "--no-status", *extra),
                                stdout=subprocess.DEVNULL, stderr=log, env=environ, start_new_session=True)


def log_of(results: Path) -> str:
    return Path(f"{results}.log").read_text()


def forged(generator: np.random.Generator, written: int) -> tuple[str, list[bytes]]:
    """A well-formed message that no honest peer sends now, and the link it goes on (ends
    travel with the frames, results on the results link)."""
    choice = int(generator.integers(0, 5))
    if choice == 0:
        return "display_frames", wire.encode(wire.EndOfStream(STREAM, int(generator.integers(0, max(1, written)))))
    if choice == 1:
        ghost_end = wire.EndOfStream(f"ghost-{generator.integers(0, 8)}", int(generator.integers(0, 50)))
        return "display_frames", wire.encode(ghost_end)
    if choice == 2:
        info = wire.FrameInfo(f"ghost-{generator.integers(0, 8)}", int(generator.integers(0, 50)), 0.0, 0.0)
        return "results", wire.encode(wire.Result(info, ((1, 1, 8, 8),), ((1 / 7,) * 7,), (1,)))
    if choice == 3:  # a frame written already: the display must not write it again
        info = wire.FrameInfo(STREAM, int(generator.integers(0, max(1, written - 5))), 0.0, 0.0)
        return "results", wire.encode(wire.Result(info, ((1, 1, 8, 8),), ((1 / 7,) * 7,), (1,)))
    return "display_frames", [b"\x81\xa1v\x02"] + [b"\0" * 65536] * 3  # more parts than any message has


class Fuzzer(threading.Thread):
    """Sends ``MESSAGES`` hostile messages over every input socket of a running replay."""

    def __init__(self, run_directory: Path, results: Path, seed_default: int):
        super().__init__(name="fuzzer", daemon=True)
        self.run_directory, self.results = run_directory, results
        self.generator, self.seed = fuzz_generator(seed_default)
        self.sent, self.error = 0, None

    def run(self) -> None:
        context = zmq.Context()
        sockets = []
        try:
            for name in SOCKETS:
                socket = context.socket(zmq.DEALER if name in DEALER_SOCKETS else zmq.PUSH)
                socket.setsockopt(zmq.LINGER, 0)
                socket.setsockopt(zmq.SNDHWM, 100_000)
                socket.connect(f"ipc://{self.run_directory / name}")
                sockets.append(socket)
            valid = [wire.encode(message) for message in samples() if not isinstance(message, wire.StreamStart)]
            by_name = dict(zip(SOCKETS, sockets, strict=True))
            for index in range(MESSAGES):
                if index % 10 == 0:
                    link, parts = forged(self.generator, line_count(self.results))
                    socket = by_name[link]
                else:
                    parts = mutate(valid[index % len(valid)], self.generator)
                    socket = sockets[index % len(sockets)]
                if socket is by_name["status-service"]:
                    parts = [b""] + parts  # a request as a REQ client frames it
                socket.send_multipart(parts)
                self.sent += 1
        except Exception as error:  # reported by the test
            self.error = error
        finally:
            for socket in sockets:
                socket.close()
            context.term()


def pipeline_rss_bytes(supervisor_pid: int) -> int:
    """Resident memory of the supervisor and every stage it started."""
    total = 0
    for pid in [supervisor_pid, *orphans_of(supervisor_pid)]:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_hostile_messages_on_every_socket_change_nothing_in_a_replay(tmp_path):
    video = shared_file(MEDIA / "office-woman.mp4")
    clean, fuzzed = tmp_path / "clean.jsonl", tmp_path / "fuzzed.jsonl"
    runtime_directory = tmp_path / "run"
    runtime_directory.mkdir(mode=0o700)

    reference = run_replay(video, clean, runtime_directory)
    assert reference.wait(REPLAY_TIMEOUT_S) == 0, log_of(clean)[-3000:]

    stats_path = tmp_path / "stats.json"
    replay = run_replay(video, fuzzed, runtime_directory, "--stats", str(stats_path))
    try:
        run_directory = Path(wait_until(lambda: glob.glob(f"{runtime_directory}/fakeblock-*/results"), 60,
                                        "the replay's sockets", replay)[0]).parent
        wait_until(lambda: line_count(fuzzed) >= START_AFTER_LINES, 120, f"{START_AFTER_LINES} lines", replay)
        fuzzer = Fuzzer(run_directory, fuzzed, DEFAULT_SEED)
        fuzzer.start()
        peak_bytes = 0
        deadline_s = time.monotonic() + REPLAY_TIMEOUT_S
        while replay.poll() is None:
            assert time.monotonic() < deadline_s, f"the fuzzed replay did not finish ({reproduce_with(fuzzer.seed)})"
            peak_bytes = max(peak_bytes, pipeline_rss_bytes(replay.pid))
            time.sleep(0.2)
        fuzzer.join(60)
    finally:
        kill_if_running(replay)
    seed = reproduce_with(fuzzer.seed)
    stderr = log_of(fuzzed)
    print(f"{fuzzer.sent} hostile messages sent; peak pipeline memory {peak_bytes / 1e6:.0f} MB; {seed}")
    assert fuzzer.error is None, f"{fuzzer.error!r} ({seed})"
    assert fuzzer.sent == MESSAGES, seed
    assert replay.returncode == 0, f"{stderr[-3000:]} ({seed})"
    assert "Traceback" not in stderr and "restarting" not in stderr, f"a process died ({seed}): {stderr[-3000:]}"
    assert fuzzed.read_bytes() == clean.read_bytes(), f"the results differ from a clean run ({seed})"
    assert peak_bytes < MAX_PIPELINE_RSS_BYTES, seed
    # The hostile messages arrived while the replay ran: each receiver dropped and counted some.
    stats = json.loads(stats_path.read_text())
    malformed = stats["malformed"]
    assert malformed["queue/0"] > 0 and malformed["display/0"] > 0 and malformed["capture/0"] > 0, (malformed, seed)
    assert stats["supervisor"]["malformed_heartbeats"] > 0 and stats["supervisor"]["malformed_requests"] > 0, seed
    # A forged heartbeat adds no worker to what the supervisor reports.
    assert set(stats["stages"]) == {"capture/0", "detect/0", "queue/0", "classify/0", "display/0"}, seed
    wait_for_no_orphans(replay.pid)

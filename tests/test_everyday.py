"""Everyday use of ``fakeblock up``: results on stdout, a finished replay's web view that stays
up until Ctrl-C, and stages named in ``ps``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import MEDIA, fakeblock, kill_if_running, orphans_of, shared_file, wait_for_no_orphans, wait_until
from tests.test_web import free_tcp_port, get

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
RUN_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0


def start_up(*arguments: str, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """``fakeblock up`` on the office video as a subprocess (its own session), stderr to a pipe."""
    video = shared_file(MEDIA / "office-woman.mp4")
    return subprocess.Popen(fakeblock("up", "--source", str(video), "--no-status", *arguments), stdout=stdout,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_results_dash_writes_json_lines_to_stdout_and_logs_to_stderr():
    process = start_up("--display", "none", "--results", "-", "--max-frames", "30", stdout=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        kill_if_running(process)
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [record["frame"] for record in records] == list(range(30)), stdout[:2000]
    assert "every stream is complete" in stderr and "wrote 30 result lines to stdout" in stderr


def test_a_reader_that_closes_stdout_ends_the_run_with_one_error_line():
    process = start_up("--display", "none", "--results", "-", "--max-frames", "200", stdout=subprocess.PIPE)
    try:
        assert json.loads(process.stdout.readline())["frame"] == 0
        process.stdout.close()  # like `| head -1`
        _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        kill_if_running(process)
    assert process.returncode == 2, stderr
    assert "error: the reader of the results on stdout went away" in stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
    wait_for_no_orphans(process.pid)


def health(port: int) -> dict | None:
    """``/healthz`` of the web view, None while it does not answer."""
    try:
        return json.loads(get(port, "/healthz", timeout_s=1)[2])
    except OSError:
        return None


def test_a_finished_replay_keeps_its_web_view_until_sigint_then_exits_0(tmp_path: Path):
    port = free_tcp_port()
    results = tmp_path / "results.jsonl"
    process = start_up("--display", "web", "--web-port", str(port), "--max-frames", "20", "--results", str(results))
    try:
        done = wait_until(lambda: (health(port) or {}).get("done"), RUN_TIMEOUT_S, "the replay to complete",
                          process, interval_s=0.2)
        assert done and len(results.read_text().splitlines()) == 20
        assert process.poll() is None, "the run ended although its web view should stay"
        status, content_type, page = get(port, "/")
        assert status == 200 and b"/emotions.json" in page
        assert json.loads(get(port, "/emotions.json")[2])["frame"] == 19
        assert health(port) == {"status": "ok", "frames": 20, "results": 20, "done": True}
        os.kill(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        kill_if_running(process)
    assert process.returncode == 0, stderr
    assert "replay done; the web view stays at http://127.0.0.1:" in stderr
    assert "after the run had completed" in stderr and "interrupted" not in stderr
    wait_for_no_orphans(process.pid)


def test_stages_and_the_supervisor_are_named_in_ps():
    pytest.importorskip("setproctitle")
    process = start_up("--display", "web", "--web-port", str(free_tcp_port()), "--max-frames", "5")
    try:
        detect = wait_until(lambda: orphans_of(process.pid, "detect"), RUN_TIMEOUT_S, "the detect stage", process)
        title = wait_until(lambda: command_line(detect[0]).startswith("fakeblock: "), 30.0,
                           "detect's process title", process)
        assert command_line(detect[0]) == "fakeblock: detect/0", title
        assert command_line(process.pid).startswith("fakeblock: up")
        os.kill(process.pid, signal.SIGINT)
        process.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        kill_if_running(process)
    wait_for_no_orphans(process.pid)


def command_line(pid: int) -> str:
    """``/proc/<pid>/cmdline`` with its NULs as spaces ("" once the process is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""

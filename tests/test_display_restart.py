"""A restarted display continues its results file: nothing written before the crash is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from fakeblock.common import wire
from fakeblock.display.order import FrameOrderer
from fakeblock.display.results_file import ResultsWriter
from tests.helpers import MEDIA, fakeblock, line_count, orphans_of, shared_file, wait_for_no_orphans, wait_until

KILL_AFTER_LINES = 100
STOP_BOUND_S = 6.0


def result(number: int, stream: str = "clip") -> wire.Result:
    return wire.Result(wire.FrameInfo(stream, number, number / 30, 0.0), (), ())


def test_a_resumed_results_file_keeps_whole_lines_drops_a_cut_one_and_appends(tmp_path):
    path = tmp_path / "results.jsonl"
    lines = [json.dumps({"stream": stream, "frame": frame, "time_s": 0.0, "faces": []})
             for stream, frame in (("door", 0), ("hall", 0), ("door", 1), ("door", 2))]
    path.write_text("\n".join(lines) + "\n" + '{"stream": "door", "fra')  # the crash cut the last line
    writer = ResultsWriter(str(path), resume=True)
    assert writer.written_frames == {"door": 3, "hall": 1}
    writer.write(result(3, "door"))
    writer.close()
    text = path.read_text()
    assert text.startswith("\n".join(lines) + "\n") and text.count("\n") == 5
    assert [json.loads(line)["frame"] for line in text.splitlines()] == [0, 0, 1, 2, 3]


def test_a_fresh_display_starts_its_results_file_anew(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"stream": "door", "frame": 0, "time_s": 0.0, "faces": []}\n')
    ResultsWriter(str(path)).close()
    assert path.read_text() == ""


def test_a_resumed_stream_writes_no_frame_twice():
    orderer = FrameOrderer(live=False, needs_frames=False)
    orderer.resume_stream("clip", 3)  # frames 0-2 are in the file already; no announcement comes again
    for number in range(5):
        orderer.add_result(result(number), 0.0)
    assert [joined.frame_number for joined in orderer.release(0.0)] == [3, 4]
    assert orderer.discarded == 3


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_display_is_restarted_and_keeps_the_lines_it_wrote(tmp_path):
    video = shared_file(MEDIA / "office-woman.mp4")
    results = tmp_path / "results.jsonl"
    process = subprocess.Popen(fakeblock("up", "--source", str(video), "--display", "none", "--results", str(results),
                                         "--no-status"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        wait_until(lambda: line_count(results) >= KILL_AFTER_LINES, 120, f"{KILL_AFTER_LINES} result lines",
                   process)
        victims = orphans_of(process.pid, "display")
        assert victims, "no display process found"
        os.kill(victims[0], signal.SIGKILL)
        before = results.read_text()
        written_before = before[:before.rfind("\n") + 1]  # whole lines only: the last may have been cut
        wait_until(lambda: [pid for pid in orphans_of(process.pid, "display") if pid not in victims], 30,
                   "a restarted display", process)
        # Frames the dead display held are not sent again (yet): wait for the file to settle, then stop.
        wait_until(_settled(results), 60, "the results file to stop growing", process)
        signalled_s = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=60)
        stop_s = time.monotonic() - signalled_s
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    text = results.read_text()
    frames = [json.loads(line)["frame"] for line in text.splitlines()]  # every line is whole JSON
    print(f"{len(written_before.splitlines())} lines before the kill, {len(frames)} after; "
          f"stopped {stop_s:.2f} s after Ctrl-C (exit {process.returncode})")
    assert text.startswith(written_before), "lines written before the crash were lost"
    assert frames == sorted(set(frames)), "a frame was written twice or out of order"
    assert process.returncode in (0, 130) and stop_s < STOP_BOUND_S, stderr[-3000:]
    assert "continuing" in stderr and "Traceback" not in stderr
    wait_for_no_orphans(process.pid)


def _settled(path, quiet_s: float = 2.0):
    """A condition that holds once ``path`` has not grown for ``quiet_s``."""
    seen = {"size": -1, "since_s": time.monotonic()}

    def check() -> bool:
        size = path.stat().st_size
        if size != seen["size"]:
            seen["size"], seen["since_s"] = size, time.monotonic()
        return time.monotonic() - seen["since_s"] >= quiet_s

    return check

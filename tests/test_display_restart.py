"""A restarted display continues its results file: nothing written before the crash is lost.

The end-to-end kill of a display mid-replay is in tests/test_lossless_restarts.py."""

from __future__ import annotations

import json

from fakeblock.common import wire
from fakeblock.display.order import FrameOrderer
from fakeblock.display.results_file import ResultsWriter

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

"""``fakeblock analyze`` and ``Analyzer.analyze_video`` give each result as it is ready.

JSON lines reach a reader while the run goes on, a closed pipe ends the command quietly,
table rows print before the video ends, a terminal gets a progress bar and a pipe none,
and ``analyze_video`` reports its progress once per frame.
"""

from __future__ import annotations

import io
import os
import re
import selectors
import signal
import subprocess
import time

import pytest
from rich.console import Console

from fakeblock.api.analyzer import Analyzer
from fakeblock.control.cli.analyze_command import BROKEN_PIPE_EXIT_CODE, Printer, analyze_path
from tests.helpers import MEDIA, assert_running, fakeblock, kill_if_running, shared_file

pytestmark = pytest.mark.timeout(180)
LINE_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 60
# Few enough frames that all their JSON lines fit in a pipe (64 KiB): a run that printed
# them only at its end would have written every one before the first could be read.
STREAMED_FRAMES = 150
TERMINAL_COLUMNS = 80
ANSI_ESCAPE = "\x1b"
ANSI_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def start(*arguments: str) -> subprocess.Popen:
    """``fakeblock`` with its stdout and stderr piped, in a session of its own.

    Without ``PYTHONUNBUFFERED``, which would flush every write for the command: its own
    flushing is what is tested.
    """
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    return subprocess.Popen(fakeblock(*arguments), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, bufsize=0, start_new_session=True, env=environment)


def read_first_line(process: subprocess.Popen, timeout_s: float = LINE_TIMEOUT_S) -> tuple[bytes, bytes]:
    """The first line ``process`` writes on stdout and what came with it, failing if it exits first."""
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline_s = time.monotonic() + timeout_s
        while b"\n" not in received:
            if time.monotonic() > deadline_s:
                raise AssertionError(f"no line on stdout within {timeout_s} s")
            if selector.select(timeout=0.1):
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"stdout closed before a whole line; stderr: {process.stderr.read()!r}")
                received += chunk
            else:
                assert_running(process, "the first line on stdout")
    line, _, rest = received.partition(b"\n")
    return line, rest


def test_the_first_json_line_comes_before_the_video_is_done():
    clip = shared_file(MEDIA / "office-woman.mp4")
    process = start("analyze", "--json", "--max-frames", str(STREAMED_FRAMES), str(clip))
    try:
        first, rest = read_first_line(process)
        assert_running(process, "the rest of the frames")  # the first line came while the run went on
        os.killpg(process.pid, signal.SIGKILL)  # at once: only the lines written by now are in the pipe
        rest += process.stdout.read()  # to the end of the pipe, which the kill closed
        process.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        kill_if_running(process)
    assert first.startswith(b'{"path": ') and b'"frame": 0' in first
    assert rest.count(b"\n") + 1 < STREAMED_FRAMES, "every frame's line was written before the first was read"


def test_json_lines_are_flushed_while_the_next_path_is_still_opening(tmp_path):
    clip = shared_file(MEDIA / "office-woman.mp4")
    never_written = tmp_path / "never-written.mp4"
    os.mkfifo(never_written)  # opening it blocks until a writer comes: the run cannot end
    process = start("analyze", "--json", "--max-frames", "2", str(clip), str(never_written))
    try:
        first, rest = read_first_line(process)
        if rest.count(b"\n") < 1:
            second, _ = read_first_line(process)
            rest += second + b"\n"
        assert_running(process, "the second path")
    finally:
        kill_if_running(process)  # SIGKILL: the open of a FIFO does not return for SIGTERM
    assert b'"frame": 0' in first and b'"frame": 1' in rest


@pytest.mark.parametrize("output", ["--json", "tables"])
def test_a_closed_pipe_ends_the_command_quietly(output):
    clip = shared_file(MEDIA / "office-woman.mp4")
    process = start("analyze", *(["--json"] if output == "--json" else []), str(clip))
    try:
        read_first_line(process)
        process.stdout.close()  # as `head -1` does once it has its line
        _, errors = process.communicate(timeout=EXIT_TIMEOUT_S)
    finally:
        kill_if_running(process)
    assert process.returncode == BROKEN_PIPE_EXIT_CODE, errors.decode()
    assert b"Traceback" not in errors and b"Exception ignored" not in errors, errors.decode()


def test_piped_tables_have_no_progress_bar(tmp_path):
    clip = shared_file(MEDIA / "office-woman.mp4")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "justin.jpg").write_bytes(shared_file(MEDIA / "justin.jpg").read_bytes())
    completed = subprocess.run(fakeblock("analyze", "--max-frames", "20", str(clip), str(folder)),
                               capture_output=True, text=True, timeout=EXIT_TIMEOUT_S, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "20 frames, 20 with a face" in completed.stdout and "justin.jpg: 1 face" in completed.stdout
    assert "\r" not in completed.stdout and ANSI_ESCAPE not in completed.stdout
    assert "frames/s" not in completed.stdout + completed.stderr


def test_a_terminal_gets_a_progress_bar_that_fits_80_columns():
    clip = shared_file(MEDIA / "office-woman.mp4")
    output = io.StringIO()
    console = Console(file=output, width=TERMINAL_COLUMNS, force_terminal=True, color_system=None)
    with Analyzer() as analyzer:
        analyze_path(analyzer, str(clip), Printer(as_json=False, console=console), max_frames=5)
    text = ANSI_SEQUENCE.sub("", output.getvalue())
    bar_lines = [line for line in text.replace("\r", "\n").splitlines() if line.startswith("office-woman.mp4 ")]
    # The words of `fakeblock up`'s bar: a count of frames, a rate and the time left as "ETA m:ss".
    assert any("5/5 frames" in line and "frames/s" in line for line in bar_lines), text
    assert any(re.search(r"ETA \d+:\d\d", line) for line in bar_lines), text
    assert max(len(line) for line in bar_lines) <= TERMINAL_COLUMNS
    assert "office-woman.mp4: 5 frames, 5 with a face" in text


def test_a_video_row_prints_before_the_next_frame_is_read():
    clip = shared_file(MEDIA / "office-woman.mp4")
    output = io.StringIO()
    printer = Printer(as_json=False, console=Console(file=output, width=TERMINAL_COLUMNS))
    printed_before_each_frame = []
    with Analyzer() as analyzer:
        def frames():
            for frame in analyzer.analyze_video(clip, max_frames=3):
                printed_before_each_frame.append(output.getvalue().count("\n"))
                yield frame
        printer.video(str(clip), frames())
    # Nothing before the first frame; then the title, header and rule, and one row a frame.
    assert printed_before_each_frame == [0, 4, 5], output.getvalue()


def test_analyze_video_reports_progress_once_per_frame_before_yielding_it(tmp_path):
    clip = shared_file(MEDIA / "office-woman.mp4")
    events: list[tuple[str, int, int | None]] = []
    with Analyzer() as analyzer:
        for frame in analyzer.analyze_video(clip, max_frames=4,
                                            progress=lambda done, total: events.append(("progress", done, total))):
            events.append(("frame", frame.frame, None))
        assert events == [event for number in range(4) for event in
                          (("progress", number + 1, 4), ("frame", number, None))]
        folder = tmp_path / "photos"
        folder.mkdir()
        for name in ("justin.jpg", "no-faces.jpg"):
            (folder / name).write_bytes(shared_file(MEDIA / name).read_bytes())
        calls: list[tuple[int, int | None]] = []
        frames = list(analyzer.analyze_video(folder, max_frames=10, progress=lambda *call: calls.append(call)))
        assert len(frames) == 2 and calls == [(1, 2), (2, 2)]  # the folder's length, not max_frames


def test_analyze_video_refuses_a_progress_that_is_not_callable():
    with Analyzer() as analyzer, pytest.raises(TypeError, match="progress must be a callable"):
        analyzer.analyze_video("demo", progress=True)  # type: ignore[arg-type]


def test_a_video_json_line_is_written_before_the_next_frame_is_read(capsys):
    clip = shared_file(MEDIA / "office-woman.mp4")
    written_before_each_frame, written = [], []
    with Analyzer() as analyzer:
        def frames():
            for frame in analyzer.analyze_video(clip, max_frames=3):
                written.append(capsys.readouterr().out)
                written_before_each_frame.append("".join(written).count("\n"))
                yield frame
        Printer(as_json=True).video(str(clip), frames())
    assert written_before_each_frame == [0, 1, 2]

"""The terminal's one vocabulary: counts, rates, worker names, lease lines, run names, the end of a run."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from fakeblock.capture.leases import Leases, reader_label
from fakeblock.common import wire
from fakeblock.common.config import PipelineConfig
from fakeblock.common.endpoints import ipc_endpoints
from fakeblock.common.wording import frame_rate, plural, rates, worker_labels
from fakeblock.control.status import discovery
from fakeblock.control.status.replay_progress import StreamProgress, finished_streams
from fakeblock.control.status.view import StatusBoard, supervisor_caption
from fakeblock.control.supervisor.drain import interrupted_line
from fakeblock.control.supervisor.shutdown import Shutdown
from fakeblock.control.supervisor.workers import Worker, plan_workers
from fakeblock.display.stage import completion_line
from tests.helpers import MEDIA, shared_file

REPOSITORY = Path(__file__).resolve().parents[1]

NAMES = ["capture/0", "detect/0", "detect/1", "display/0"]


def test_plural_says_one_frame_and_two_frames():
    assert plural(1, "frame") == "1 frame"
    assert plural(1.0, "result line") == "1 result line"
    assert plural(0, "frame") == "0 frames" and plural(464, "frame") == "464 frames"
    assert plural(2, "match", "matches") == "2 matches"


def test_frame_rates_have_one_decimal():
    assert frame_rate(24.701716702186573) == "24.7 fps"
    assert frame_rate(None) == "unknown fps"
    assert rates(29.64, 88.81) == "29.6 in/s, 88.8 out/s"


def test_a_stages_only_worker_is_named_by_its_stage():
    assert worker_labels(NAMES) == {"capture/0": "capture", "detect/0": "detect/0", "detect/1": "detect/1",
                                    "display/0": "display"}


def test_the_supervisor_names_each_worker_as_the_table_does(tmp_path):
    config = PipelineConfig(ipc_endpoints(tmp_path), detect_workers=2)
    assert sorted(worker.label for worker in plan_workers(config)) == ["capture", "classify", "detect/0", "detect/1",
                                                                      "display", "queue"]
    assert Worker("detect", 3, None).label == "detect/3"  # planned elsewhere: the full name


def test_a_stages_log_lines_begin_with_its_label(tmp_path):
    # A child as the supervisor starts it, with the crashing test stage as its entry point.
    code = ("from fakeblock.control.supervisor.workers import child_main\n"
            "child_main('crashing', None, None, 0, 20, None, 'tests.crashing_stage:run_crashing', 'crashing')\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                               cwd=REPOSITORY)
    assert completed.returncode == 1, completed.stderr
    assert re.search(r"^\d\d:\d\d:\d\d ERROR crashing: crashed$", completed.stderr, re.MULTILINE), completed.stderr
    assert "crashing/0:" not in completed.stderr


def test_the_lease_line_names_the_reader_in_plain_words(caplog):
    assert reader_label("detect/1@vm:18668") == "detect/1 on vm (pid 18668)"
    table = Leases("office-woman", 2.0, clock=lambda: 100.0)
    table.heard(b"\x00k\x8bEg", wire.Ready("detect/0@vm:18667"))
    with caplog.at_level(logging.INFO, logger="fakeblock.capture.leases"):
        table.targets()
    assert caplog.messages == ["office-woman: frames go to detect/0 on vm (pid 18667); 1 detect worker ready"]


def _worker(name: str, started: bool, role: str | None = None) -> SimpleNamespace:
    """A supervised worker as the board reads it: a source not started has no process yet."""
    process = SimpleNamespace(pid=200) if started else None
    return SimpleNamespace(name=name, role=role, finished=False, exit_code=None, process=process,
                           alive=lambda: started)


def _board(tmp_path) -> StatusBoard:
    return StatusBoard(PipelineConfig(ipc_endpoints(tmp_path)), NAMES)


def test_a_capture_not_started_yet_is_starting_not_done(tmp_path):
    board = _board(tmp_path)
    workers = [_worker("capture/0", started=False), *(_worker(name, started=True) for name in NAMES[1:])]
    capture_row = next(row for row in zip(*(column.cells for column in board.table(workers).columns), strict=True)
                       if row[0] == "capture")
    assert capture_row[1] == "starting"


def _states(board: StatusBoard, workers) -> dict[str, str]:
    """Each row of the board's table: its stage label -> its state word."""
    columns = board.table(workers).columns
    return {row[0]: row[1] for row in zip(*(column.cells for column in columns), strict=True)}


def _ended(name: str, role: str | None = None) -> SimpleNamespace:
    """A worker whose process has exited and been noticed (``finished``)."""
    return SimpleNamespace(name=name, role=role, finished=True, exit_code=0, process=SimpleNamespace(pid=200),
                           alive=lambda: False)


def test_after_ctrl_c_the_stages_read_stopped_not_done(tmp_path):
    board = _board(tmp_path)
    workers = [_ended("capture/0", "source"), *(_worker(name, started=True) for name in NAMES[1:3]),
               _worker("display/0", started=True, role="sink")]
    board.update(wire.Status("display", 0, 200, {"results_written": 138}))  # not complete: no "complete" count
    # The capture had sent its last frame when the signal came: it finished by itself.
    Shutdown(workers, board).on_signal(signal.SIGINT, None)
    for worker in workers[1:]:  # then the rest drained and exited
        worker.finished, worker.alive = True, lambda: False
    assert _states(board, workers) == {"capture": "done", "detect/0": "stopped", "detect/1": "stopped",
                                       "display": "stopped"}


def test_a_source_a_signal_kept_from_starting_reads_stopped(tmp_path):
    board = _board(tmp_path)
    workers = [_worker("capture/0", started=False), *(_ended(name) for name in NAMES[1:])]
    board.note_interruption([])
    assert set(_states(board, workers).values()) == {"stopped"}


def test_a_signal_after_the_run_completed_leaves_every_stage_done(tmp_path):
    board = _board(tmp_path)
    workers = [_ended("capture/0", "source"), *(_ended(name) for name in NAMES[1:3]), _ended("display/0", "sink")]
    workers[-1].finished, workers[-1].alive = False, lambda: True  # the web view stays up until Ctrl-C
    board.update(wire.Status("display", 0, 200, {"results_written": 464, "complete": 1}))
    Shutdown(workers, board).on_signal(signal.SIGINT, None)
    workers[-1].finished, workers[-1].alive = True, lambda: False
    assert set(_states(board, workers).values()) == {"done"}
    assert not board.interrupted


def test_the_log_summary_names_both_rates(tmp_path):
    board = _board(tmp_path)
    board.rates["display/0"] = (29.6, 88.8)
    assert board.summary_line("display/0") == "display 29.6 in/s, 88.8 out/s"
    assert board.summary_line("detect/1") == "detect/1 0.0 in/s, 0.0 out/s"


def test_the_supervisors_counters_show_only_when_not_zero():
    assert supervisor_caption({"malformed_heartbeats": 0, "malformed_requests": 0}) is None
    shown = supervisor_caption({"malformed_heartbeats": 2, "malformed_requests": 0})
    assert shown == "supervisor: malformed heartbeats 2"


def test_a_stream_stopped_short_loses_its_bar_at_the_end():
    stopped = StreamProgress("capture", 138, 464, 5.0)
    whole = StreamProgress("capture/1", 464, 464, 16.0)
    camera = StreamProgress("capture/2", 300, None, 10.0)
    assert finished_streams([stopped, whole, camera]) == [whole]


def test_an_interrupted_run_does_not_call_itself_complete():
    assert completion_line(138, finish_requested=True) is None
    assert completion_line(464, finish_requested=False) == "every stream is complete; 464 results written"
    assert completion_line(1, finish_requested=False) == "every stream is complete; 1 result written"
    workers = [SimpleNamespace(name="capture/0", role="source"), SimpleNamespace(name="display/0", role="sink")]
    latest = {"capture/0": wire.Status("capture", 0, 1, {"frames_out": 1, "frames_total": 464}),
              "display/0": wire.Status("display", 0, 2, {"results_written": 1})}
    assert interrupted_line(workers, latest) == "interrupted at frame 1 of 464; 1 result written"


def _pipeline(pid: int, sources: tuple[str, ...], host: str = "vm") -> discovery.LocalPipeline:
    return discovery.LocalPipeline(pid, host, f"ipc:///tmp/{pid}/status-service", ("capture",), sources=sources)


def test_status_names_two_runs_on_one_machine_by_what_they_read(tmp_path):
    assert discovery.source_description("/work/media/office-woman.mp4", None) == "office-woman.mp4"
    assert discovery.source_description("rtsp://door/1", "door") == "rtsp://door/1 as door"
    runs = [_pipeline(1, ("office-woman.mp4",)), _pipeline(2, ("phone-woman.mp4 as lobby",)),
            _pipeline(3, ("phone-woman.mp4 as lobby",)), _pipeline(4, (), host="laptop")]
    assert discovery.pipeline_labels(runs) == ["vm: office-woman.mp4", "vm: phone-woman.mp4 as lobby (pid 2)",
                                               "vm: phone-woman.mp4 as lobby (pid 3)", "laptop"]
    mine = _pipeline(__import__("os").getpid(), ("office-woman.mp4",))
    discovery.register(mine, tmp_path / "registry")
    assert discovery.local_pipelines(tmp_path / "registry") == [mine], "the sources survive the note"


def test_an_undecodable_video_prints_no_ffmpeg_line(tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(shared_file(MEDIA / "office-woman.mp4").read_bytes()[:200_000])
    code = ("from fakeblock.capture.core import open_source\n"
            "try:\n    open_source(%r)\nexcept Exception as error:\n    print(error)" % str(cut))
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "cannot decode" in finished.stdout, finished
    assert "moov atom" not in finished.stdout + finished.stderr, finished


def test_the_command_s_own_log_lines_name_the_part_that_speaks():
    from fakeblock.control.cli.user_errors import SpeakerFormatter, speaker

    assert speaker("fakeblock.control.supervisor.loop") == "supervisor"
    assert speaker("fakeblock.control.status.view") == "fakeblock"
    assert speaker("fakeblock.train.run") == "train"
    assert speaker("fakeblock.trainer") == "fakeblock.trainer"  # a prefix of names, not of letters
    assert speaker("urllib3.connectionpool") == "urllib3.connectionpool"
    record = logging.LogRecord("fakeblock.control.supervisor.loop", logging.INFO, __file__, 1, "done: %d frames",
                               (300,), None)
    line = SpeakerFormatter("%(levelname)s %(speaker)s: %(message)s").format(record)
    assert line == "INFO supervisor: done: 300 frames"


def test_a_signal_is_named_as_the_person_sent_it():
    from fakeblock.control.supervisor.shutdown import signal_words

    assert signal_words(signal.SIGINT) == ("Ctrl-C", "Ctrl-C again")
    name, again = signal_words(signal.SIGTERM)
    assert name.startswith("SIGTERM") and again == "another SIGTERM"

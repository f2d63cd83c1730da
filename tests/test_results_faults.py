"""The results writer at the edges: a full disk, /dev/full, a pipe or FIFO after a restart, the file
deleted or replaced mid-run.  Each keeps whole lines only and says what happened in one line.

The same faults through ``fakeblock up`` are in tests/test_results_faults_e2e.py."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
from pathlib import Path

import pytest

from fakeblock.common import wire
from fakeblock.common.errors import OUTPUT_FAILED_EXIT_CODE, OutputFailed
from fakeblock.display import results_file
from fakeblock.display.results_file import ResultsWriter

DISK_BYTES = 200 * 1024
FILLER_BYTES = 150 * 1024
MANY_LINES = 5000  # far more than fit in what the small disk has left


def result(number: int, stream: str = "clip") -> wire.Result:
    return wire.Result(wire.FrameInfo(stream, number, number / 30, 0.0), ((10, 20, 48, 48),),
                       ((0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1),))


def assert_whole_lines(path: Path, lines: int) -> list[dict]:
    """The file holds exactly ``lines`` whole JSON lines, frames 0, 1, ... in order."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"a cut line at the end: {data[-60:]!r}"
    records = [json.loads(line) for line in data.splitlines()]
    assert [record["frame"] for record in records] == list(range(lines))
    return records


@contextlib.contextmanager
def small_disk(folder: Path):
    """A 200 kB tmpfs at ``folder`` with 150 kB used; skips where mounting is not permitted."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES // 1024}k", "tmpfs", str(folder)],
                             capture_output=True, text=True, timeout=10, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        (folder / "filler").write_bytes(b"x" * FILLER_BYTES)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=10, check=False)


def write_until_it_fails(writer: ResultsWriter, count: int = MANY_LINES) -> OutputFailed:
    with pytest.raises(OutputFailed) as failure:
        for number in range(count):
            writer.write(result(number))
        writer.close()
    return failure.value


def test_a_full_disk_keeps_whole_lines_and_says_how_many_in_one_line(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        path = disk / "results.jsonl"
        error = write_until_it_fails(ResultsWriter(str(path)))
        kept = int(str(error).rsplit(": ", 1)[1].split()[0])
        assert str(error) == f"no space left on device writing {path}: {kept} lines kept"
        assert error.exit_code == OUTPUT_FAILED_EXIT_CODE
        assert 0 < kept < MANY_LINES
        assert_whole_lines(path, kept)
        print(f"full disk: {kept} whole lines kept, {path.stat().st_size} bytes")


def test_a_full_disk_found_by_a_restarted_writer_is_the_same_one_line(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        path = disk / "results.jsonl"
        path.write_text("".join(json.dumps({"stream": "clip", "frame": n, "faces": []}) + "\n" for n in range(3))
                        + '{"stream": "clip", "fra')
        writer = ResultsWriter(str(path), resume=True)
        assert writer.written_frames == {"clip": 3}
        error = write_until_it_fails(writer)
        kept = int(str(error).rsplit(": ", 1)[1].split()[0])
        assert kept > 3 and str(error).startswith("no space left on device writing")
        assert [record["frame"] for record in map(json.loads, path.read_text().splitlines())][:4] == [0, 1, 2, 0]
        assert len(path.read_text().splitlines()) == kept and path.read_bytes().endswith(b"\n")


def test_dev_full_is_one_line_with_nothing_kept():
    writer = ResultsWriter("/dev/full")
    writer.write(result(0))
    with pytest.raises(OutputFailed, match=r"^no space left on device writing /dev/full: 0 lines kept$"):
        writer.close()


@pytest.mark.timeout(20)
def test_a_restarted_writer_does_not_read_dev_full_back(caplog):
    caplog.set_level(logging.WARNING)
    writer = ResultsWriter("/dev/full", resume=True)  # reading it back would never end
    assert writer.written_frames == {}
    assert "not a regular file" in caplog.text and "cannot be checked" in caplog.text
    writer.write(result(0))
    with pytest.raises(OutputFailed, match="no space left on device"):
        writer.close()


@pytest.mark.timeout(30)
def test_a_restarted_writer_whose_fifo_has_no_reader_fails_in_one_line(tmp_path, monkeypatch):
    # A plain open of a FIFO without a reader waits for one for ever: the run hung.
    monkeypatch.setattr(results_file, "FIFO_READER_WAIT_S", 0.5)
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    with pytest.raises(OutputFailed, match="nobody reads this FIFO any more") as raised:
        ResultsWriter(str(fifo), resume=True)
    assert raised.value.exit_code == OUTPUT_FAILED_EXIT_CODE


@pytest.mark.timeout(20)
def test_a_restarted_writer_appends_to_a_fifo_without_reading_it(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    writer = ResultsWriter(str(fifo), resume=True)
    assert writer.written_frames == {} and "cannot be checked" in caplog.text
    for number in range(5):
        writer.write(result(number))
    writer.close()
    reader.join(10)
    assert not reader.is_alive(), "the reader of the FIFO never saw its end"
    assert [json.loads(line)["frame"] for line in received[0].splitlines()] == [0, 1, 2, 3, 4]


def test_a_results_file_deleted_mid_run_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(results_file, "RESULTS_FLUSH_INTERVAL_S", 0.0)
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(str(path))
    for number in range(10):
        writer.write(result(number))
    path.unlink()
    gone = rf"^{path} was deleted during the run; the 11 lines written to it are gone$"
    with pytest.raises(OutputFailed, match=gone):
        writer.write(result(10))
    assert not path.exists()
    writer.close()  # already closed by the failure: nothing more to do, nothing raised


def test_a_results_file_replaced_mid_run_fails_and_leaves_the_new_file_alone(tmp_path):
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(str(path))
    for number in range(4):
        writer.write(result(number))
    writer.flush()
    other = tmp_path / "other.jsonl"
    other.write_text("someone else's\n")
    os.replace(other, path)
    writer.write(result(4))
    with pytest.raises(OutputFailed, match="was replaced by another file during the run"):
        writer.close()
    assert path.read_text() == "someone else's\n"


def test_overwriting_a_results_file_says_so(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    path = tmp_path / "results.jsonl"
    path.write_text('{"stream": "clip", "frame": 0}\n')
    ResultsWriter(str(path)).close()
    assert path.read_text() == "" and f"overwriting {path}" in caplog.text

"""Bad input is refused before anything starts: one ``error:`` line on stderr, exit code 2, no stage.

Each case runs the real command line in a subprocess.  A stage that started would show on
stderr: every stage names itself in its log lines (``capture: ...``) and the supervisor
names a stage that exits, so the refusal is the whole of stderr, and nothing was written.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import STAGE_LOG_LINE, fakeblock

pytestmark = pytest.mark.timeout(180)
COMMAND_TIMEOUT_S = 120


def run_command(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(fakeblock(*arguments), capture_output=True, text=True, cwd=cwd,
                          timeout=COMMAND_TIMEOUT_S, check=False)


def assert_refused_before_start(completed: subprocess.CompletedProcess, *key_words: str) -> None:
    """Exit 2, stderr exactly one ``error: `` line holding ``key_words``, no traceback, no stage."""
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr + completed.stdout
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr[-3000:]
    for word in key_words:
        assert word in lines[0], lines[0]
    assert not STAGE_LOG_LINE.search(completed.stderr), completed.stderr[-3000:]
    assert completed.stdout == ""


def mount_type(folder: str) -> str | None:
    """The file system type mounted right at ``folder`` (``sysfs`` at /sys), None if none is or it is unknown."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    kinds = {fields[1]: fields[2] for fields in (line.split() for line in lines) if len(fields) > 2}
    return kinds.get(folder)


def write_image(path: Path) -> Path:
    """A small grey image that decodes."""
    cv2.imwrite(str(path), np.full((64, 64, 3), 128, np.uint8))
    return path


@pytest.fixture
def undecodable_folder(tmp_path: Path) -> Path:
    """A folder whose only image is not an image: ``mkdir bad; echo junk > bad/c.jpg``."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "c.jpg").write_text("junk\n")
    return folder


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_image(tmp_path / "photo.png")


def test_up_refuses_a_folder_in_which_nothing_decodes(undecodable_folder, tmp_path):
    results = tmp_path / "x.jsonl"
    completed = run_command("up", "--source", "bad", "--display", "none", "--results", str(results),
                            "--no-status", cwd=tmp_path)
    assert_refused_before_start(completed, "bad", "cannot be decoded")
    assert not results.exists()


def test_up_refuses_a_folder_whose_first_images_all_fail_however_many_follow(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(12):
        (folder / f"{number:02}.jpg").write_text("junk\n")
    write_image(folder / "99.png")  # decodes, but after ten that do not
    completed = run_command("up", "--source", str(folder), "--display", "none", "--results", "x.jsonl",
                            "--no-status", cwd=tmp_path)
    assert_refused_before_start(completed, "none of its first 10 images (of 13)", "right folder")


def test_analyze_refuses_a_folder_in_which_nothing_decodes(undecodable_folder, tmp_path):
    assert_refused_before_start(run_command("analyze", "bad", cwd=tmp_path), "bad", "cannot be decoded")


def test_analyze_refuses_a_missing_path_before_analysing_the_others(photo, tmp_path):
    completed = run_command("analyze", "--json", str(photo), str(tmp_path / "missing.jpg"), cwd=tmp_path)
    assert_refused_before_start(completed, "missing.jpg", "no such file")


def test_display_none_without_any_output_is_refused_saying_what_to_add(photo, tmp_path):
    completed = run_command("up", "--source", str(photo), "--display", "none", "--no-status", cwd=tmp_path)
    assert_refused_before_start(completed, "--display none", "add --results FILE")


def test_results_that_name_a_folder_are_refused(photo, tmp_path):
    (tmp_path / "out").mkdir()
    completed = run_command("up", "--source", str(photo), "--display", "none", "--results", "out", "--no-status",
                            cwd=tmp_path)
    assert_refused_before_start(completed, "--results", "is a folder", "out/results.jsonl")


@pytest.mark.parametrize(("folder", "kind"), [("/sys", "sysfs"), ("/proc", "proc")])
def test_results_on_a_kernel_file_system_are_refused_with_the_true_reason(photo, tmp_path, folder, kind):
    if mount_type(folder) != kind:
        pytest.skip(f"{folder} is not a {kind} file system here")
    completed = run_command("up", "--source", str(photo), "--display", "none", "--results", f"{folder}/r.jsonl",
                            "--no-status", cwd=tmp_path)
    assert_refused_before_start(completed, f"{folder}/r.jsonl", f"kernel's {kind} file system", "choose a folder")


@pytest.mark.slow  # `fakeblock up` runs the whole pipeline over the folder
def test_a_folder_with_some_bad_images_warns_for_each_and_sums_them_up(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jpg").write_text("junk\n")
    write_image(folder / "b.png")
    (folder / "c.jpg").write_text("junk\n")
    results = tmp_path / "mixed.jsonl"
    up = run_command("up", "--source", str(folder), "--display", "none", "--results", str(results), "--no-status",
                     cwd=tmp_path)
    analyze = run_command("analyze", "--json", str(folder), cwd=tmp_path)
    for completed in (up, analyze):
        assert completed.returncode == 0, completed.stderr[-3000:]
        warnings = [line for line in completed.stderr.splitlines() if "WARNING" in line]
        assert sum("cannot decode image, skipped" in line for line in warnings) == 2, completed.stderr
        assert warnings[-1].endswith("2 of 3 images could not be decoded and were skipped"), completed.stderr
    assert len(results.read_text().splitlines()) == 1
    assert len(analyze.stdout.splitlines()) == 1


needs_tensorflow = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                      reason="fakeblock train needs TensorFlow (the train extra)")


@pytest.mark.train
@needs_tensorflow
def test_train_refuses_wrong_columns_without_leaving_an_output_folder(tmp_path):
    (tmp_path / "wrong.csv").write_text("label,image\n1,2\n")
    completed = run_command("train", "--data", "wrong.csv", "--output", "runs/new", cwd=tmp_path)
    assert_refused_before_start(completed, "missing column")
    assert not (tmp_path / "runs").exists()



def test_train_checks_its_data_before_loading_tensorflow(tmp_path):
    # The data's error comes before TensorFlow is imported: a wrong file is refused in a
    # moment, not after TensorFlow's seconds of start-up.
    (tmp_path / "wrong.csv").write_text("label,image\n1,2\n")
    script = ("import sys\n"
              "sys.argv = ['fakeblock', 'train', '--data', 'wrong.csv', '--output', 'runs/new']\n"
              "from fakeblock.control.cli.entry import main\n"
              "try:\n    main()\nfinally:\n    open('imported', 'w').write(str('tensorflow' in sys.modules))\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                               timeout=COMMAND_TIMEOUT_S, check=False)
    assert_refused_before_start(completed, "wrong.csv: missing column(s) emotion, pixels")
    assert (tmp_path / "imported").read_text() == "False", "TensorFlow was imported before the data was checked"
    assert not (tmp_path / "runs").exists()

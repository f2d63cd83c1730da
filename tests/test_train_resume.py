"""A training run killed at any moment and resumed gives the uninterrupted run's epochs.

Each run is a real process (``tests/killed_training.py``) that SIGKILLs itself: in the
middle of an epoch, or between an epoch's history row and its checkpoint.  The resumed
run must log the same per-epoch losses and accuracies as a run that was never stopped,
to the last digit: the input order, augmentation, erasing and dropout of each epoch
depend on the seed and the epoch number alone, and the checkpoint holds the weights and
the optimizer's state (see fakeblock/train/resume.py).
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

pytestmark = [pytest.mark.train, pytest.mark.timeout(600), pytest.mark.usefixtures("cache_in_tmp")]
EPOCHS = 4
RUN_TIMEOUT_S = 240
REPOSITORY = Path(__file__).resolve().parents[1]


def train_process(when: str, data_path: Path, output: Path, *options: str) -> subprocess.CompletedProcess:
    """``fakeblock train`` on the synthetic CSV, dying at ``when`` (see tests/killed_training.py)."""
    command = [sys.executable, "-m", "tests.killed_training", when, "--", "--data", str(data_path),
               "--output", str(output), "--epochs", str(EPOCHS), "--batch-size", "8", "--max-rows", "28",
               "--erase-probability", "0.3", *options]
    return subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def history(output: Path) -> list[dict]:
    with open(output / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def uninterrupted(layouts, tmp_path_factory) -> list[dict]:
    output = tmp_path_factory.mktemp("uninterrupted") / "run"
    finished = train_process("never", layouts["csv"][0], output)
    assert finished.returncode == 0, finished.stderr[-3000:]
    rows = history(output)
    assert [row["epoch"] for row in rows] == [str(epoch) for epoch in range(EPOCHS)]
    return rows


@pytest.mark.parametrize(("when", "saved_epochs", "logged_epochs"), [
    ("batch:2:1", 2, 2),    # mid-epoch: epoch 3 of 4 had run two of its four batches
    ("unsaved:1", 1, 2),    # epoch 2's row is in the history, its checkpoint is not
])
def test_a_killed_and_resumed_run_logs_the_epochs_of_an_uninterrupted_one(
        when, saved_epochs, logged_epochs, layouts, uninterrupted, tmp_path):
    data_path, output = layouts["csv"][0], tmp_path / "run"
    killed = train_process(when, data_path, output)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert [path.name for path in (output / "backup").iterdir()] == [f"epoch-{saved_epochs:04d}.weights.h5"]
    assert len(history(output)) == logged_epochs

    refused = train_process("never", data_path, output)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr

    resumed = train_process("never", data_path, output, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming after epoch {saved_epochs}" in resumed.stderr
    assert history(output) == uninterrupted, "the resumed epochs differ from the uninterrupted run's"
    assert not (output / "backup").exists()
    assert json.loads((output / "model.json").read_text())["epochs"] == EPOCHS

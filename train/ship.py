"""Export a training run's best checkpoint and ship it as the package's default model.

    python -m fakeblock.train.ship RUN_DIRECTORY [--wall-time-s S]

Evaluates the best ``model.keras`` of the run on its validation split (through the
classify runtime, as ``fakeblock eval`` does), writes ``emotion.tflite``, ``model.json``
and the plots into the run folder, then copies the model and its card into
``classify/models/`` and the plots into ``docs/``.  Works on a finished run or on one
still training (its best checkpoint so far).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from fakeblock.classify.runtime import default_model_path
from fakeblock.train import data
from fakeblock.train.run import CONFIG_NAME, TIMING_NAME, TFLITE_NAME, TrainConfig, finish

LOGGER = logging.getLogger(__name__)
DOCS = Path(__file__).resolve().parents[1] / "docs"


def load_config(run_directory: Path) -> TrainConfig:
    """The run's recorded configuration."""
    recorded = json.loads((run_directory / CONFIG_NAME).read_text())
    return TrainConfig(**recorded)


def ship(run_directory: Path, wall_time_s: float | None) -> dict:
    """Export, evaluate and copy into the package; returns the model card."""
    config = load_config(run_directory)
    if wall_time_s is None:
        timing = run_directory / TIMING_NAME
        wall_time_s = json.loads(timing.read_text())["wall_time_s"] if timing.exists() else 0.0
    dataset = data.load_dataset(config.data, ferplus=config.ferplus, seed=config.seed)
    card = finish(config, run_directory, dataset, dataset.validation_split(), wall_time_s)
    target = default_model_path()
    shutil.copyfile(run_directory / TFLITE_NAME, target)
    target.with_name("model.json").write_text(json.dumps(card, indent=2) + "\n")
    DOCS.mkdir(exist_ok=True)
    for plot in ("confusion.png", "history.png"):
        shutil.copyfile(run_directory / plot, DOCS / f"default-model-{plot}")
    LOGGER.info("shipped %s (%s accuracy %.4f)", target, card["data"]["validation_split"],
                card["validation"]["accuracy"])
    return card


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Ship a run's best model as fakeblock's default")
    parser.add_argument("run_directory", type=Path)
    parser.add_argument("--wall-time-s", type=float, default=None, help="override the recorded training time")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    card = ship(arguments.run_directory, arguments.wall_time_s)
    print(json.dumps({key: card["validation"][key] for key in ("accuracy", "macro_recall", "per_class_recall")},
                     indent=2))


if __name__ == "__main__":
    main()

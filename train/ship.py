"""Ship a training run's best checkpoint, or a ``fakeblock ensemble`` export, as the default model.

    python -m fakeblock.train.ship RUN_OR_ENSEMBLE_DIRECTORY [--wall-time-s S]

For a training run: evaluates the best ``model.keras`` on its validation split (through
the classify runtime, as ``fakeblock eval`` does), writes ``emotion.tflite``,
``model.json`` and the plots into the run folder; this works on a finished run or on one
still training (its best checkpoint so far). An ensemble folder is already exported and
scored. Either way the model and its card are copied into ``classify/models/`` and the
plots into ``docs/`` (an ensemble has no training curves of its own, so the old ones go).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from fakeblock.classify.model_runtime import default_model_path
from fakeblock.train import data
from fakeblock.train.card import without_machine_paths, write_card
from fakeblock.train.run import TrainConfig, finish
from fakeblock.train.run_files import CARD_NAME, CONFIG_NAME, PLOT_NAMES, TFLITE_NAME, TIMING_NAME

LOGGER = logging.getLogger(__name__)
DOCS = Path(__file__).resolve().parents[1] / "docs"


def load_config(run_directory: Path) -> TrainConfig:
    """The run's recorded configuration."""
    recorded = json.loads((run_directory / CONFIG_NAME).read_text())
    return TrainConfig(**recorded)


def ship(directory: Path, wall_time_s: float | None = None) -> dict:
    """Copy a run's (freshly exported) or an ensemble's model into the package; returns the model card."""
    if (directory / CONFIG_NAME).exists():
        card = export_run(directory, wall_time_s)
    else:
        card = json.loads((directory / CARD_NAME).read_text())
    card = without_machine_paths(card, Path(__file__).resolve().parents[1])
    target = default_model_path()
    shutil.copyfile(directory / TFLITE_NAME, target)
    write_card(target.with_name(CARD_NAME), card)
    DOCS.mkdir(exist_ok=True)
    for plot in PLOT_NAMES:  # a plot the folder lacks must not outlive the old model
        shipped_plot = DOCS / f"default-model-{plot}"
        if (directory / plot).exists():
            shutil.copyfile(directory / plot, shipped_plot)
        else:
            shipped_plot.unlink(missing_ok=True)
    LOGGER.info("shipped %s (%s accuracy %.4f)", target, card["data"]["validation_split"],
                card["validation"]["accuracy"])
    return card


def export_run(run_directory: Path, wall_time_s: float | None) -> dict:
    """Export and evaluate a training run's best checkpoint; returns its model card."""
    config = load_config(run_directory)
    if wall_time_s is None:
        timing = run_directory / TIMING_NAME
        wall_time_s = json.loads(timing.read_text())["wall_time_s"] if timing.exists() else 0.0
    dataset = data.load_dataset(config.data, ferplus=config.ferplus, seed=config.seed)
    return finish(config, run_directory, dataset, dataset.validation_split(), wall_time_s)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Ship a run's best model or an ensemble as fakeblock's default")
    parser.add_argument("directory", type=Path, help="a training run or fakeblock ensemble output folder")
    parser.add_argument("--wall-time-s", type=float, default=None, help="override the recorded training time")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    card = ship(arguments.directory, arguments.wall_time_s)
    print(json.dumps({key: card["validation"][key] for key in ("accuracy", "macro_recall", "per_class_recall")},
                     indent=2))


if __name__ == "__main__":
    main()

"""``fakeblock eval``: score a model on held-out faces with the classify stage's own runtime.

Prediction goes through :class:`fakeblock.classify.model_runtime.EmotionModel`, the class the
pipeline runs, so the numbers describe what users get.  A ``.tflite`` model is scored with
LiteRT alone: nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from fakeblock.classify.model_runtime import EmotionModel, default_model_path
from fakeblock.common.errors import UserError
from fakeblock.common.model_io import EMOTIONS
from fakeblock.train import class_metrics, data
from fakeblock.train.run_files import CARD_NAME

LOGGER = logging.getLogger(__name__)
# Faces per progress-bar step; EmotionModel splits each chunk into its own padded batches.
CHUNK_SIZE = 512


@dataclass
class EvalConfig:
    """Everything ``fakeblock eval`` can be told."""

    data: str
    split: str | None = None
    models: tuple[str, ...] = ()
    tta: bool = False
    json_path: str | None = None
    ferplus: str | None = None
    seed: int = 1337


def resolve_model_paths(models: tuple[str, ...]) -> list[Path]:
    """The models to evaluate: those given, else the shipped default."""
    if models:
        return [Path(model) for model in models]
    shipped = default_model_path()
    if not shipped.is_file():
        raise UserError("no shipped model found; pass --model")
    return [shipped]


def predict_scores(model: EmotionModel, faces: np.ndarray, tta: bool = False, progress: Progress | None = None
                   ) -> np.ndarray:
    """Emotion scores ``(N, 7)``; with ``tta`` the mean of the face's and its mirror image's scores."""
    task = progress.add_task("scoring", total=len(faces)) if progress is not None else None
    parts = []
    for start in range(0, len(faces), CHUNK_SIZE):
        chunk = faces[start:start + CHUNK_SIZE]
        scores = model.scores(chunk)
        if tta:
            # Expressions are close to left-right symmetric and training augments with
            # horizontal flips, so the mirror image is a second opinion on the same face.
            scores = (scores + model.scores(chunk[:, :, ::-1])) / 2
        parts.append(scores)
        if task is not None:
            progress.advance(task, len(chunk))
    return np.concatenate(parts) if parts else np.zeros((0, len(EMOTIONS)), np.float32)


def run(config: EvalConfig) -> dict:
    """Load the model(s) and the held-out faces, score them and return (and maybe write) the summary.

    Several models are scored as an ensemble: the mean of their scores.
    """
    model_paths = resolve_model_paths(config.models)
    models = [EmotionModel(path) for path in model_paths]  # every file is checked before the data is read
    dataset = data.load_dataset(config.data, ferplus=config.ferplus, seed=config.seed)
    faces, labels = dataset.select(config.split)
    if not len(faces):
        raise data.DataError(f"{config.data}: no faces to evaluate in {config.split or 'the held-out splits'}")
    model_names = " + ".join(str(path) for path in model_paths)
    LOGGER.info("evaluating %s on %d faces of %s", model_names, len(faces), config.data)
    with _progress() as progress:
        scores = np.mean([predict_scores(model, faces, config.tta, progress) for model in models], axis=0)
    summary = class_metrics.summarise(labels, scores.argmax(axis=1))
    summary.update(model=model_names, data=str(config.data), split=config.split or "held-out", tta=config.tta)
    if len(model_paths) == 1:
        summary["card"] = card_description(model_paths[0])
    if config.json_path:
        _write_json(Path(config.json_path), summary)
    return summary


def card_description(model_path: Path) -> str | None:
    """One line on the card beside ``model_path``: what it is, how it was trained, the accuracy it states.

    None when there is no readable card (a bare model file).
    """
    try:
        card = json.loads(model_path.with_name(CARD_NAME).read_text())
        stated = f"states {card['validation']['accuracy']:.4f} on {card['data']['validation_split']}"
    except (OSError, ValueError, KeyError, TypeError):
        return None
    members = card.get("members") or []
    kind = f"ensemble of {len(members)}" if card.get("architecture") == "ensemble" else str(card.get("architecture"))
    quantization = card.get("quantization") or (card.get("config") or {}).get("quantization")
    configs = [card.get("config") or {}, *((member.get("training") or {}).get("config") or {} for member in members)]
    shares = sorted({config["pipeline_view_share"] for config in configs if config.get("pipeline_view_share")})
    training = (f"trained with pipeline views ({', '.join(f'{share:.0%}' for share in shares)} of faces)" if shares
                else "trained on dataset crops")
    return f"card: {kind}{', ' + quantization if quantization else ''}, {training}; {stated}"


def _progress() -> Progress:
    """A transient progress bar on stderr, so stdout keeps only the results."""
    return Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


def _write_json(path: Path, summary: dict) -> None:
    try:
        path.write_text(json.dumps(summary, indent=2) + "\n")
    except OSError as error:
        raise UserError(f"{path}: cannot write the results ({error.strerror or error})") from None


def summary_tables(summary: dict) -> list:
    """Rich renderables for the terminal: headline numbers, per-class recall, confusion matrix."""
    # Text, not a markup string: a path with brackets in it must print as it is.
    headline = Text(f"accuracy {summary['accuracy']:.4f}   macro recall {summary['macro_recall']:.4f}   "
                    f"n {summary['n']}   split {summary['split']}{'   flip TTA' if summary.get('tta') else ''}\n"
                    f"model {summary['model']}\ndata {summary['data']}"
                    + (f"\n{summary['card']}" if summary.get("card") else ""))
    confusion = np.asarray(summary["confusion"])
    # No borders between columns: eight emotions' names and the recall stay whole at 80 columns.
    table = Table(title="confusion (rows: true, columns: predicted)", box=box.SIMPLE_HEAD, show_edge=False,
                  collapse_padding=True)
    table.add_column("true", style="bold", overflow="fold")
    for name in EMOTIONS:
        table.add_column(name, justify="right", overflow="fold")
    table.add_column("recall", justify="right", style="bold", overflow="fold")
    for row, name in enumerate(EMOTIONS):
        counts = [str(value) if value else "[dim]0[/dim]" for value in confusion[row]]
        recall = f"{summary['per_class_recall'][name]:.3f}" if confusion[row].sum() else "-"
        table.add_row(name, *counts, recall)
    return [headline, table]

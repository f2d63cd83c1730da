"""The ``fakeblock`` command line: a thin typer app, one ``run(config)`` call per command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from fakeblock.common.errors import UserError, report_user_errors

app = typer.Typer(help="Real-time facial emotion recognition as a multiprocess ZeroMQ pipeline.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def main_callback() -> None:
    """fakeblock: faces in, emotions out, one process per stage."""


def setup_logging(verbose: bool) -> None:
    """Log to stderr; INFO by default, DEBUG with --verbose."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


@app.command()
def train(
    data: Path = typer.Option(..., "--data", help="fer2013.csv(.gz) or an image folder (<split>/<emotion>/*.jpg)."),
    output: Path = typer.Option(Path("runs/default"), "--output", "-o", help="Directory for checkpoints and the model."),
    architecture: str = typer.Option("default", "--arch", help="default or seed."),
    epochs: int = typer.Option(60, min=1, help="Epochs to train."),
    batch_size: int = typer.Option(64, min=1, help="Faces per training batch."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", "--lr", min=0.0, help="Peak learning rate."),
    optimizer: str = typer.Option("adam", help="adam or sgd."),
    loss: str = typer.Option("crossentropy", help="crossentropy or mse (the seed's loss)."),
    label_smoothing: float = typer.Option(0.1, min=0.0, max=0.5, help="Label smoothing for crossentropy."),
    class_weight_power: float = typer.Option(0.25, min=0.0, max=1.0, help="0 = no class weights, 1 = inverse frequency."),
    ferplus: Optional[str] = typer.Option(None, help="Use FER+ votes from fer2013new.csv: majority or probability."),
    seed: int = typer.Option(1337, help="Random seed for splits, shuffling and initialisation."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --output."),
    max_rows: Optional[int] = typer.Option(None, min=1, help="Train on at most this many rows (quick checks)."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train an emotion model and export .keras, .tflite, model.json and plots to --output."""
    setup_logging(verbose)
    if ferplus not in (None, "majority", "probability"):
        raise typer.BadParameter("choose majority or probability", param_hint="--ferplus")
    with report_user_errors():
        from fakeblock.train.run import TrainConfig, run

        card = run(TrainConfig(data=str(data), output=str(output), architecture=architecture, epochs=epochs,
                               batch_size=batch_size, learning_rate=learning_rate, optimizer=optimizer, loss=loss,
                               label_smoothing=label_smoothing, class_weight_power=class_weight_power,
                               ferplus=ferplus, seed=seed, resume=resume, max_rows=max_rows))
    typer.echo(f"accuracy {card['validation']['accuracy']:.4f} on {card['data']['validation_split']}; "
               f"model in {output}")


def main() -> None:
    """Entry point of the ``fakeblock`` script."""
    app()


if __name__ == "__main__":
    main()

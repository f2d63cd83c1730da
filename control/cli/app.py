"""The ``fakeblock`` command line: a thin typer app, one ``run(config)`` call per command."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from fakeblock.api.analyzer_options import ANALYZE_COMMAND_OPTIONS
from fakeblock.common.version import VERSION
from fakeblock.control.cli.deploy_commands import keys_app, status_command
from fakeblock.control.cli.help_format import (
    RUN_SECTION,
    TRAIN_SECTION,
    WATCH_SECTION,
    CommandGroup,
    PlainHelpCommand,
)
from fakeblock.control.cli.up_options import config_values, with_table_options
from fakeblock.control.cli.user_errors import (
    VERBOSE_HELP,
    report_user_errors,
    setup_logging,
    tensorflow_installed,
    tensorflow_required,
)
from fakeblock.control.report import MIN_TRACK_FRAMES
from fakeblock.train.pipeline_view_settings import PIPELINE_VIEW_SHARE

# -h as well as --help, on the app and (inherited through the context) on every command.
HELP_OPTION_NAMES = {"help_option_names": ["-h", "--help"]}
APP_HELP = ("Recognise emotions on faces in photos, videos and camera streams.\n\n"
            "Each stage (capture, detect, classify, display) runs in its own process, on one machine "
            "or several; they talk over ZeroMQ (a message library).\n\n"
            "Run fakeblock COMMAND -h for a command's options.")
# Plain help (rich_markup_mode None): click's two columns give each description the room left
# of its option, where typer's rich panel squeezes it into a fraction of 80 columns.  CommandGroup
# lists the commands by use and answers a bare `fakeblock` with the help (see help_format).
app = typer.Typer(help=APP_HELP, cls=CommandGroup, context_settings=HELP_OPTION_NAMES, no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def show_version(wanted: bool) -> None:
    """``--version``: print ``fakeblock <version>`` and exit 0."""
    if wanted:
        typer.echo(f"fakeblock {VERSION}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", is_eager=True, expose_value=False, callback=show_version,
                                 help="Show the version and exit."),
) -> None:
    """The options of fakeblock itself (--version); the help is APP_HELP."""


def check_ferplus(ferplus: str | None) -> None:
    """``--ferplus`` takes majority or probability (shared by train and eval)."""
    from fakeblock.train.ferplus import FERPLUS_MODES

    if ferplus is not None and ferplus not in FERPLUS_MODES:
        raise typer.BadParameter(f"choose {' or '.join(FERPLUS_MODES)}", param_hint="--ferplus")


@app.command(rich_help_panel=TRAIN_SECTION, cls=PlainHelpCommand)
def train(
    data: Path = typer.Option(..., "--data", metavar="PATH",
                              help="fer2013.csv(.gz) or an image folder (<split>/<emotion>/*.jpg)."),
    output: Path = typer.Option(Path("runs/default"), "--output", "-o",
                                metavar="FOLDER", help="Folder for checkpoints and the model."),
    architecture: str = typer.Option("default", "--arch", metavar="NAME",
                                     help="default, wide (a slower teacher network for --teacher) or seed."),
    epochs: int = typer.Option(60, min=1, metavar="N", help="Epochs to train (passes over the training faces)."),
    batch_size: int = typer.Option(64, min=1, metavar="N", help="Faces per training batch."),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", "--lr", min=0.0, metavar="RATE",
                                        help="Peak learning rate (the size of a training step)."),
    optimizer: str = typer.Option("adam", metavar="NAME", help="adam or sgd."),
    loss: str = typer.Option("crossentropy", metavar="NAME", help="crossentropy or mse (the seed's loss)."),
    label_smoothing: float = typer.Option(0.1, min=0.0, max=0.5, metavar="X",
                                          help="Share of each face's label spread over all emotions (label "
                                               "smoothing, for crossentropy)."),
    class_weight_power: float = typer.Option(0.25, min=0.0, max=1.0,
                                             metavar="X", help="How much more rare emotions weigh: 0 = all "
                                                               "alike, 1 = inverse frequency."),
    ferplus: Optional[str] = typer.Option(None, metavar="MODE",
                                          help="Learn from the FER+ votes (ten people's labels per face, "
                                               "fer2013new.csv): majority or probability (default: the "
                                               "FER2013 labels)."),
    seed: int = typer.Option(1337, metavar="N", help="Random seed for splits, shuffling and initialisation."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --output "
                                "(default: start afresh)."),
    max_rows: Optional[int] = typer.Option(None, min=1, metavar="N",
                                           help="Train on at most this many rows, for quick checks "
                                                "(default: all)."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", metavar="MODEL",
                                             help="Start from this .keras or .tflite model's weights (same "
                                                  "--arch) with a fresh learning-rate schedule; an int8 (8-bit) "
                                                  "model's weights are turned back into floats (default: random "
                                                  "weights)."),
    init_member: Optional[int] = typer.Option(None, "--init-member", min=0, metavar="N",
                                              help="With --init-from an ensemble .tflite, such as the shipped "
                                                   "model: start from its network N, counted from 0 (default: "
                                                   "needed only for an ensemble)."),
    teacher: Optional[list[Path]] = typer.Option(None, "--teacher", metavar="MODEL",
                                                 help="Distil from this trained model: learn from its scores "
                                                      "too (.tflite or .keras); repeat for several (default: "
                                                      "none)."),
    teacher_weight: float = typer.Option(0.5, min=0.0, max=1.0, metavar="X",
                                         help="Share of the training target taken from the teachers' scores."),
    erase_probability: float = typer.Option(0.0, min=0.0, max=1.0, metavar="P",
                                            help="Share of training faces that get a random rectangle of noise "
                                                 "(random erasing)."),
    pipeline_view: float = typer.Option(PIPELINE_VIEW_SHARE, "--pipeline-view", min=0.0, max=1.0, metavar="SHARE",
                                        help="Share of training faces shown as the pipeline sees them in video: "
                                             "enlarged, through a camera and a codec, re-framed as the face "
                                             "finder boxes them (0: none)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Train an emotion model on labelled faces.

    Writes checkpoints, the model (.keras and .tflite), model.json and plots to --output.
    Needs TensorFlow (the train extra).
    """
    setup_logging(verbose)
    check_ferplus(ferplus)
    with report_user_errors():
        from fakeblock.train.data import check_source

        tensorflow_installed("fakeblock train")
        check_source(data, ferplus)  # before TensorFlow loads: a wrong file is refused at once
        with tensorflow_required("fakeblock train"):
            from fakeblock.train.run import TrainConfig, run
        card = run(TrainConfig(data=str(data), output=str(output), architecture=architecture, epochs=epochs,
                               batch_size=batch_size, learning_rate=learning_rate, optimizer=optimizer, loss=loss,
                               label_smoothing=label_smoothing, class_weight_power=class_weight_power,
                               ferplus=ferplus, seed=seed, resume=resume, max_rows=max_rows,
                               init_from=str(init_from) if init_from else None, init_member=init_member,
                               teachers=tuple(str(path) for path in teacher or ()), teacher_weight=teacher_weight,
                               erase_probability=erase_probability, pipeline_view_share=pipeline_view))
    typer.echo(f"accuracy {card['validation']['accuracy']:.4f} on {card['data']['validation_split']}; "
               f"model in {output}")


@app.command("eval", rich_help_panel=TRAIN_SECTION, cls=PlainHelpCommand)
def evaluate(
    data: Path = typer.Option(..., "--data", metavar="PATH", help="fer2013.csv(.gz) or an image folder, as for train."),
    split: Optional[str] = typer.Option(None, metavar="NAME",
                                        help="The split to score: a Usage value of the CSV or a split folder "
                                             "(default: every non-training row)."),
    model: Optional[list[Path]] = typer.Option(None, metavar="MODEL",
                                               help="A .tflite or .keras model (default: the shipped model); "
                                               "repeat to score an ensemble, the mean of the models' scores."),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation (TTA): average each prediction with "
                             "that of the mirrored face (default: off)."),
    json_path: Optional[Path] = typer.Option(None, "--json", metavar="FILE",
                                             help="Also write the results to this JSON file (default: only "
                                                  "the tables)."),
    ferplus: Optional[str] = typer.Option(None, metavar="MODE",
                                          help="Score against the FER+ votes (ten people's labels per face, "
                                          "fer2013new.csv): majority or probability (default: the FER2013 "
                                          "labels)."),
    seed: int = typer.Option(1337, metavar="N",
                             help="Seed of the held-out split for data without named splits (as for train)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Score a model on held-out faces.

    Prints the accuracy, the macro recall (the mean of the emotions' recalls, so a rare
    emotion counts as much as a common one), each emotion's recall (the share of its faces
    the model names right) and the confusion matrix (which emotion is taken for which).
    """
    setup_logging(verbose)
    check_ferplus(ferplus)
    with report_user_errors():
        from fakeblock.train.evaluate import EvalConfig, run, summary_tables

        summary = run(EvalConfig(data=str(data), split=split, models=tuple(str(path) for path in model or ()), tta=tta,
                                 json_path=str(json_path) if json_path else None, ferplus=ferplus, seed=seed))
    from rich.console import Console

    console = Console()
    for renderable in summary_tables(summary):
        console.print(renderable)


@app.command(rich_help_panel=TRAIN_SECTION, cls=PlainHelpCommand)
def ensemble(
    model: list[Path] = typer.Option(..., "--model", metavar="MODEL",
                                     help="A trained .keras model or training run folder; repeat to average several."),
    data: Path = typer.Option(..., "--data", metavar="PATH",
                              help="The training data: a sample sets the ranges of the int8 model's 8-bit "
                                   "numbers (calibration), held-out faces give the score."),
    output: Path = typer.Option(Path("runs/ensemble"), "--output", "-o", metavar="FOLDER",
                                help="Folder for the exported model."),
    quantize: str = typer.Option("int8", metavar="MODE",
                                 help="int8 (8-bit numbers: 3.9x the float speed on AVX-512 VNNI CPUs, "
                                      "less on older ones) or float16."),
    calibration_faces: int = typer.Option(1000, min=1, metavar="N",
                                          help="Training faces that set the int8 value ranges (calibration)."),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation (TTA): also average each model's "
                             "scores of the mirrored face, twice the work per face (default: off)."),
    smoothing_sigma: Optional[float] = typer.Option(
        None, min=0.0, max=2.0, metavar="PIXELS",
        help="Blur for members trained before models had their own inference smoothing "
             "(default: 0.71, the blur of training augmentation; 0 turns it off)."),
    seed: int = typer.Option(1337, metavar="N",
                             help="Seed of the calibration sample and of the split for unsplit data."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Combine trained models into one model file.

    Averages the models' scores inside one network and exports it as one .tflite, for
    `fakeblock up --model`. Needs TensorFlow (the train extra).
    """
    setup_logging(verbose)
    with report_user_errors():
        with tensorflow_required("fakeblock ensemble"):
            from fakeblock.train.ensemble import EnsembleConfig, run
        from fakeblock.train.run_files import TFLITE_NAME
        smoothing = {} if smoothing_sigma is None else {"smoothing_sigma_px": smoothing_sigma}
        card = run(EnsembleConfig(models=tuple(str(path) for path in model), data=str(data), output=str(output),
                                  quantization=quantize, calibration_faces=calibration_faces, tta=tta, seed=seed,
                                  **smoothing))
    typer.echo(f"accuracy {card['validation']['accuracy']:.4f} on {card['data']['validation_split']}; "
               f"model in {output / TFLITE_NAME}")


def up(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Deployment file (TOML) naming where every "
                                          "stage runs and listens (default: env FAKEBLOCK_CONFIG, else every "
                                          "stage here).", metavar="FILE"),
    only: Optional[str] = typer.Option(None, help="Run only these stages here, e.g. detect,queue,classify "
                                       "(default: every stage). Without --config they talk over Unix sockets "
                                       "in your private folder, which your other --only runs share and no "
                                       "other user can enter.", metavar="STAGES"),
    host: Optional[str] = typer.Option(None, metavar="HOST",
                                       help="Which host of the deployment file this is (default: worked out)."),
    keys: Optional[Path] = typer.Option(None, help="Key folder from `fakeblock keys generate`: encrypt and "
                                        "authenticate the links with CurveZMQ, ZeroMQ's security (default: the "
                                        "deployment file's, else none). With --only and no --config: over TCP ports "
                                        "5550-5554 of this machine, with keys.", metavar="FOLDER"),
    insecure: bool = typer.Option(False, "--insecure", help="Allow listening beyond this machine WITHOUT keys "
                                  "(warns every start; default: refused). With --only and no --config: over TCP "
                                  "ports 5550-5554 of this machine without keys, open to every local user."),
    stats: Optional[Path] = typer.Option(None, metavar="FILE",
                                         help="Write a JSON summary (frames, drops, latency) at exit "
                                              "(default: none)."),
    status: bool = typer.Option(True, "--status/--no-status", show_default=False,
                                help="Show a live table of each stage's rates, queues and drops, or not "
                                     "(default: --status)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
    **options,
) -> None:
    """Run the pipeline on a camera, video or URL.

    Capture, detect, classify and display each run in their own process, restarted if one
    crashes. With a deployment file (--config), only this host's share of the stages runs.
    """
    # The stage options (**options) come from the option table on the config dataclasses:
    # see fakeblock.control.cli.up_options.
    setup_logging(verbose)
    from fakeblock.control.supervisor.preflight import run
    from fakeblock.control.supervisor.run_config import Deployment, build_config

    deployment = Deployment(str(config) if config else None, only, host, str(keys) if keys else None, insecure)
    with report_user_errors():
        if deployment.uses_site(os.environ):
            # Over a deployment file only the options typed on this command line count.
            options = {name: value for name, value in options.items() if _typed(ctx, name)}
        pipeline_config = build_config(deployment, config_values(options), stats=str(stats) if stats else None,
                                       show_status=status)
        code = run(pipeline_config, say=lambda line: typer.echo(line, err=True),
                   log_level=logging.DEBUG if verbose else logging.INFO)
    raise typer.Exit(code)


app.command(rich_help_panel=RUN_SECTION, cls=PlainHelpCommand)(with_table_options(up))


def analyze(
    paths: list[str] = typer.Argument(..., metavar="PATH", help="Images, folders of images or videos (or what "
                                      "--source takes: a camera index, a stream URL, demo)."),
    json_lines: bool = typer.Option(False, "--json", help="One JSON line per image or video frame on stdout, "
                                    "instead of tables."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
    **options,
) -> None:
    """Analyse images and videos in one process.

    No pipeline to start: prints a table per image or video, or JSON lines (--json).
    """
    # The detect and model options are `fakeblock up`'s, from the option table.
    setup_logging(verbose)
    with report_user_errors():
        from fakeblock.control.cli.analyze_command import run

        run(paths, config_values(options), as_json=json_lines)


app.command(rich_help_panel=RUN_SECTION, cls=PlainHelpCommand)(
    with_table_options(analyze, names=ANALYZE_COMMAND_OPTIONS))


def _typed(ctx: typer.Context, option: str) -> bool:
    """True when ``option`` (a parameter name) was given on the command line."""
    # By name: typer bundles its own click in newer releases, so the enum's class varies.
    source = ctx.get_parameter_source(option)
    return source is not None and source.name == "COMMANDLINE"


app.command("status", rich_help_panel=WATCH_SECTION, cls=PlainHelpCommand)(status_command)
app.add_typer(keys_app, name="keys", rich_help_panel=WATCH_SECTION)


@app.command(rich_help_panel=RUN_SECTION, cls=PlainHelpCommand)
def report(
    results: Path = typer.Argument(..., metavar="FILE", help="A results file (JSON lines) from "
                                   "`fakeblock up --results`."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FOLDER",
                                          help="Folder for the report, created if missing "
                                               "(default: FILE-report beside the results file)."),
    all_tracks: bool = typer.Option(False, "--all-tracks",
                                    help=f"Keep tracks seen in fewer than {MIN_TRACK_FRAMES} frames (default: left "
                                         "out of the band and summary.csv; most are false detections)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Plot emotions over time from a results file.

    Writes each stream's emotion timeline (PNG) and a summary of every track, a face
    followed from frame to frame (CSV).

    Timeline: a line per emotion, the mean score over the faces in view at each frame; no face, a gap.

    The mean, not a line per track, stays readable however many people pass; a band shows each track's top emotion.

    summary.csv: a row per track (per stream without tracking): first and last seen, frames seen, emotion shares.
    """
    setup_logging(verbose)
    with report_user_errors():
        from fakeblock.control.report.command import write_report

        written = write_report(results, output, 1 if all_tracks else MIN_TRACK_FRAMES)
    for path in written:
        typer.echo(str(path))


def main() -> None:
    """Entry point of the ``fakeblock`` script (and ``python -m fakeblock``)."""
    if sys.argv[1:2] == ["up"]:  # the supervisor, as `ps` and `top` show it (not a caller running app())
        from fakeblock.common.process_title import set_process_title

        set_process_title("up")
    app()


if __name__ == "__main__":
    main()

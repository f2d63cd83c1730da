"""``fakeblock train`` and ``fakeblock eval`` on tiny synthetic datasets of every layout.

Faces are drawn, not downloaded (tests/training_data.py): a grey head with a bar whose
angle depends on the emotion, so labels are learnable.  Training runs are one epoch on a
few dozen faces; the point is that every layout goes through loading, fitting, export and
evaluation.
"""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakeblock.common.preprocess import EMOTIONS
from fakeblock.train import class_metrics, data
from tests.training_data import (
    ROWS_PER_CLASS,
    draw_face,
    invoke,
    labelled_rows,
    train,
    write_ferplus,
    write_image_tree,
    write_kaggle_csv,
)

# cache_in_tmp (tests/conftest.py): every test gets its own model cache, as the CLI would use.
pytestmark = [pytest.mark.train, pytest.mark.timeout(300), pytest.mark.usefixtures("cache_in_tmp")]

CARD_KEYS = {"architecture", "layers", "classes", "preprocessing", "validation", "epochs", "wall_time_s",
             "versions", "data"}
ARTIFACTS = ("model.keras", "emotion.tflite", "model.json", "history.csv", "history.png", "confusion.png")


def assert_user_error(result, *fragments: str) -> None:
    """Exit code 2, exactly one stderr line starting 'error:', and no traceback anywhere."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def evaluate(data_path: Path, model: Path, json_path: Path, *options: str) -> dict:
    result = invoke("eval", "--data", data_path, "--model", model, "--json", json_path, *options)
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.stdout and "confusion" in result.stdout
    return json.loads(json_path.read_text())


def assert_evaluation(summary: dict, held_out: int) -> None:
    assert summary["n"] == held_out
    confusion = np.asarray(summary["confusion"])
    assert confusion.shape == (len(EMOTIONS), len(EMOTIONS)) and confusion.sum() == held_out
    assert list(summary["per_class_recall"]) == list(EMOTIONS)
    assert summary["accuracy"] == pytest.approx(np.trace(confusion) / held_out)
    assert 0.0 <= summary["macro_recall"] <= 1.0


# ---------------------------------------------------------------- train, then eval, per layout

@pytest.mark.parametrize("layout", ["csv", "csv.gz", "folder", "ferplus"])
def test_train_exports_a_model_that_eval_scores(layout, layouts, csv_model, tmp_path):
    data_path, options, held_out = layouts[layout]
    output = csv_model if layout == "csv" else tmp_path / "run"
    erase_probability = 0.5 if layout == "folder" else 0.0  # one layout also trains with random erasing
    if layout != "csv":
        result = train(data_path, output, *options, "--erase-probability", erase_probability)
        assert result.exit_code == 0, result.output
    for name in ARTIFACTS:
        assert (output / name).stat().st_size > 0, name
    card = json.loads((output / "model.json").read_text())
    assert CARD_KEYS <= set(card)
    assert card["classes"] == list(EMOTIONS) and card["epochs"] == 1 and card["wall_time_s"] >= 0
    assert card["validation"]["n"] == held_out
    assert list(card["validation"]["per_class_recall"]) == list(EMOTIONS)
    assert {"python", "tensorflow", "keras", "numpy"} <= set(card["versions"])
    assert card["config"]["erase_probability"] == erase_probability
    if layout in ("csv", "csv.gz"):  # the card's hash is the file's own sha256sum
        assert card["data"]["sha256"] == hashlib.sha256(data_path.read_bytes()).hexdigest()
    eval_options = ["--ferplus", "majority"] if layout == "ferplus" else []
    summary = evaluate(data_path, output / "emotion.tflite", tmp_path / "eval.json", *eval_options)
    assert_evaluation(summary, held_out)
    assert summary["model"] == str(output / "emotion.tflite")


def test_eval_split_tta_and_unsplit_folders(csv_model, layouts, tmp_path):
    model = csv_model / "emotion.tflite"
    training = evaluate(layouts["csv"][0], model, tmp_path / "training.json", "--split", "Training")
    assert_evaluation(training, ROWS_PER_CLASS["Training"] * len(EMOTIONS))
    flipped = evaluate(layouts["csv"][0], model, tmp_path / "tta.json", "--split", "PublicTest", "--tta")
    assert_evaluation(flipped, ROWS_PER_CLASS["PublicTest"] * len(EMOTIONS))
    assert flipped["tta"] is True
    unsplit = write_image_tree(tmp_path / "unsplit")  # 5 per emotion: round(5 * 0.2) = 1 held out each
    assert_evaluation(evaluate(unsplit, model, tmp_path / "unsplit.json"), len(EMOTIONS))
    assert_user_error(invoke("eval", "--data", layouts["csv"][0], "--model", model, "--split", "Nope"),
                      "no split named 'Nope'")


def constant_model(path: Path, scores: dict[str, float]) -> Path:
    """A .keras model that gives every face the same ``scores`` (emotion name -> score)."""
    import keras

    wanted = np.array([scores.get(name, 1e-6) for name in EMOTIONS], np.float32)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(len(EMOTIONS), activation="softmax", kernel_initializer="zeros",
                                                 bias_initializer=keras.initializers.Constant(np.log(wanted)))])
    model.save(path)
    return path


def angry_and_happy_models(folder: Path) -> tuple[Path, Path]:
    """Two constant models: alone, one says angry and the other happy; their mean says disgust."""
    return (constant_model(folder / "angry.keras", {"angry": 0.6, "disgust": 0.4}),
            constant_model(folder / "happy.keras", {"happy": 0.6, "disgust": 0.4}))


def test_eval_of_several_models_scores_the_mean_of_their_scores(layouts, tmp_path):
    data_path = layouts["csv"][0]
    angry, happy = angry_and_happy_models(tmp_path)
    ensemble = evaluate(data_path, angry, tmp_path / "ensemble.json", "--model", happy, "--split", "PublicTest")
    assert ensemble["model"] == f"{angry} + {happy}"
    confusion = np.asarray(ensemble["confusion"])
    assert confusion[:, EMOTIONS.index("disgust")].sum() == ensemble["n"] == confusion.sum()
    alone = evaluate(data_path, angry, tmp_path / "alone.json", "--split", "PublicTest")
    assert np.asarray(alone["confusion"])[:, EMOTIONS.index("angry")].sum() == alone["n"]
    assert_user_error(invoke("eval", "--data", data_path, "--model", angry, "--model", tmp_path / "nope.tflite"),
                      "nope.tflite", "not found")


def test_eval_uses_the_shipped_model_or_says_it_is_missing(csv_model, layouts, monkeypatch):
    from fakeblock.train import evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "default_model_path", lambda: csv_model / "absent.tflite")
    assert_user_error(invoke("eval", "--data", layouts["csv"][0]), "no shipped model found; pass --model")
    monkeypatch.setattr(evaluate_module, "default_model_path", lambda: csv_model / "emotion.tflite")
    result = invoke("eval", "--data", layouts["csv"][0])
    assert result.exit_code == 0, result.output
    assert str(csv_model / "emotion.tflite") in result.stdout.replace("\n", "")
    # the card beside the model: what it is, how it was trained, what it claims
    stated = json.loads((csv_model / "model.json").read_text())["validation"]["accuracy"]
    assert f"card: default, trained with pipeline views (50% of faces); states {stated:.4f} on PublicTest" \
        in " ".join(result.stdout.split())


def test_eval_of_a_tflite_model_never_imports_tensorflow(csv_model, layouts):
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from fakeblock.control.cli.app import app\n"
        f"result = CliRunner().invoke(app, ['eval', '--data', {str(layouts['csv'][0])!r}, "
        f"'--model', {str(csv_model / 'emotion.tflite')!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "loaded = sorted(name for name in ('tensorflow', 'keras') if name in sys.modules)\n"
        "assert not loaded, f'eval imported {loaded}'\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]


# ---------------------------------------------------------------- other models, resume, unfinished runs

def test_seed_model_is_interrupted_refuses_a_fresh_start_and_resumes(layouts, tmp_path, monkeypatch):
    from fakeblock.train import run as train_run

    class InterruptAfterFirstEpoch(train_run.RichProgress):
        """Ctrl-C right after epoch 1 has been backed up and logged."""

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch == 0:
                self.progress.stop()
                raise KeyboardInterrupt

    data_path, output = layouts["csv"][0], tmp_path / "seed"
    seed_options = ("--arch", "seed", "--loss", "mse", "--optimizer", "sgd", "--learning-rate", "0.01")
    with monkeypatch.context() as patch:
        patch.setattr(train_run, "RichProgress", InterruptAfterFirstEpoch)
        interrupted = train(data_path, output, *seed_options, epochs=2)
    assert interrupted.exit_code == 130 and "Traceback" not in interrupted.output
    assert (output / "backup").is_dir()
    assert_user_error(train(data_path, output, *seed_options, epochs=2), "unfinished run", "--resume")
    resumed = train(data_path, output, *seed_options, "--resume", epochs=2)
    assert resumed.exit_code == 0, resumed.output
    assert not (output / "backup").exists()
    with open(output / "history.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1"]
    card = json.loads((output / "model.json").read_text())
    assert card["epochs"] == 2 and card["architecture"] == "seed"
    assert (card["config"]["loss"], card["config"]["optimizer"]) == ("mse", "sgd")
    for name in ARTIFACTS:
        assert (output / name).exists(), name


def test_only_a_resumed_run_must_beat_the_best_accuracy_in_the_history(tmp_path):
    import keras

    from fakeblock.train import run as train_run

    (tmp_path / "history.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.9,0.1,0.95,0.1\n")

    def threshold(resume: bool):
        callbacks = train_run._callbacks(train_run.TrainConfig(data="unused", resume=resume), tmp_path)
        return next(item for item in callbacks if isinstance(item, keras.callbacks.ModelCheckpoint)).best

    # A fresh run into a finished folder that had to beat 0.95 would never save, then
    # export the old run's model.keras as its own.
    assert threshold(resume=False) is None
    assert threshold(resume=True) == pytest.approx(0.95)


def test_max_rows_samples_every_class_not_the_first_rows():
    from fakeblock.train import run as train_run

    labels = np.repeat(np.arange(len(EMOTIONS)), 10)  # sorted by class, as image folders are read
    faces = np.zeros((len(labels), 48, 48), np.uint8)
    dataset = data.FaceDataset("folder", "x", {"train": (faces, labels), "test": (faces, labels)})
    config = train_run.TrainConfig(data="folder", max_rows=21)
    sampled_faces, sampled_labels, targets = train_run._training_rows(config, dataset)
    assert len(sampled_faces) == len(targets) == 21
    assert len(np.unique(sampled_labels)) >= 5
    np.testing.assert_array_equal(targets.argmax(axis=1), sampled_labels)


def test_resume_without_a_checkpoint_is_a_clear_error(layouts, tmp_path):
    assert_user_error(train(layouts["csv"][0], tmp_path / "fresh", "--resume"), "nothing to resume")


def test_the_card_describes_the_layers_of_the_default_network(csv_model):
    from fakeblock.train.model import DEFAULT_STAGE_WIDTHS

    layers = json.loads((csv_model / "model.json").read_text())["layers"]
    assert layers["convolution_widths"] == [width for width in DEFAULT_STAGE_WIDTHS for _ in range(2)]
    assert layers["dense_units"][-1] == len(EMOTIONS)
    assert 10_000_000 < layers["multiply_adds_per_face"] < 100_000_000


def test_the_wide_teacher_network_is_wider_and_costlier_than_the_default():
    from fakeblock.train.model import describe_layers, make_model

    default, wide = (describe_layers(make_model(name)) for name in ("default", "wide"))
    assert len(wide["convolution_widths"]) == len(default["convolution_widths"])
    assert all(w > d for w, d in zip(wide["convolution_widths"], default["convolution_widths"], strict=True))
    assert 1.5 < wide["multiply_adds_per_face"] / default["multiply_adds_per_face"] < 4


def test_an_unknown_architecture_is_one_clear_line(layouts, tmp_path):
    result = train(layouts["csv"][0], tmp_path / "out", "--arch", "resnet")
    assert_user_error(result, "unknown architecture 'resnet'", "default, wide, seed")
    assert not (tmp_path / "out").exists()


def first_kernel(model_path: Path) -> np.ndarray:
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    return next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)).get_weights()[0]


def test_init_from_starts_from_a_trained_model(csv_model, layouts, tmp_path):
    # With a learning rate of zero the convolutions cannot move, so the new model's kernels
    # are exactly the ones it started from.
    result = train(layouts["csv"][0], tmp_path / "warm", "--init-from", csv_model / "model.keras",
                   "--learning-rate", "0")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(first_kernel(tmp_path / "warm" / "model.keras"),
                                  first_kernel(csv_model / "model.keras"))
    card = json.loads((tmp_path / "warm" / "model.json").read_text())
    assert card["config"]["init_from"] == str(csv_model / "model.keras")


def test_init_from_a_missing_broken_or_different_model_is_one_clear_line(layouts, tmp_path):
    import keras

    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)]).save(other)
    broken = write_text(tmp_path / "broken.keras", "not a zip")
    for model, message in ((tmp_path / "nope.keras", "no such model file"), (broken, "not a Keras model"),
                           (other, "do not match")):
        assert_user_error(train(layouts["csv"][0], tmp_path / model.stem, "--init-from", model), message)


def test_a_tflite_export_rebuilds_into_the_same_keras_model(csv_model, layouts):
    # The shipped model is only a .tflite file with batch normalisation folded away; the
    # rebuilt Keras network must score faces as that file does.
    from fakeblock.classify.model_runtime import EmotionModel
    from fakeblock.common.preprocess import normalise_faces
    from fakeblock.train import from_tflite
    from fakeblock.train.model import make_model

    faces = data.load_dataset(layouts["csv"][0]).splits["Training"][0]
    folded = from_tflite.read_folded_layers(csv_model / "emotion.tflite")
    model = make_model("default")
    from_tflite.check_matches(model, folded, "test")
    from_tflite.load_folded_weights(model, folded, faces)
    rebuilt = model.predict(normalise_faces(faces), verbose=0)
    exported = EmotionModel(csv_model / "emotion.tflite").scores(faces)
    np.testing.assert_allclose(rebuilt, exported, atol=1e-4)


def test_init_from_a_tflite_export_starts_from_its_weights(csv_model, layouts, tmp_path):
    from fakeblock.train import from_tflite

    result = train(layouts["csv"][0], tmp_path / "warm", "--init-from", csv_model / "emotion.tflite",
                   "--learning-rate", "0")
    assert result.exit_code == 0, result.output
    folded_kernel = from_tflite.read_folded_layers(csv_model / "emotion.tflite")[0].kernel
    np.testing.assert_array_equal(first_kernel(tmp_path / "warm" / "model.keras"), folded_kernel)


def test_init_from_a_broken_or_different_tflite_is_one_clear_line(csv_model, layouts, tmp_path):
    import keras

    from fakeblock.train.export import export_tflite

    other = tmp_path / "other.tflite"
    export_tflite(keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)]), other)
    broken = write_text(tmp_path / "broken.tflite", "not a flatbuffer")
    for model, message in ((tmp_path / "nope.tflite", "no such model file"),
                           (broken, "not a TFLite model"), (other, "do not match")):
        assert_user_error(train(layouts["csv"][0], tmp_path / model.stem, "--init-from", model), message)
    assert_user_error(train(layouts["csv"][0], tmp_path / "member", "--init-from", csv_model / "model.keras",
                            "--init-member", "0"), "ensemble .tflite")


# ---------------------------------------------------------------- bad input: one line, no traceback

def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def bad_pixel_row(tmp_path: Path) -> Path:
    path = write_kaggle_csv(tmp_path / "short.csv", labelled_rows())
    with open(path, "a", newline="") as handle:
        csv.writer(handle).writerow([3, " ".join(["128"] * 100), "Training"])
    return path


def unknown_emotion_folder(tmp_path: Path) -> Path:
    root = write_image_tree(tmp_path / "tree", {"train": 1, "test": 1})
    (root / "train" / "smiling").mkdir()
    cv2.imwrite(str(root / "train" / "smiling" / "0.jpg"), np.zeros((48, 48), np.uint8))
    return root


def empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


BAD_DATA = {
    "missing file": (lambda tmp_path: tmp_path / "nope.csv", "no such file"),
    "wrong columns": (lambda tmp_path: write_text(tmp_path / "x.csv", "label,image\n1,2\n"), "missing column"),
    "short pixel row": (bad_pixel_row, "expected 2304 pixels, found 100"),
    "empty folder": (empty_folder, "empty folder"),
    "unknown emotion": (unknown_emotion_folder, "unknown emotion folder 'smiling'"),
    "not a csv": (lambda tmp_path: write_text(tmp_path / "faces.txt", "hello"), "expected a .csv"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_one_clear_line(case, tmp_path):
    make_path, message = BAD_DATA[case]
    assert_user_error(train(make_path(tmp_path), tmp_path / "out"), message)


def test_a_flat_folder_with_an_unknown_emotion_is_named(tmp_path):
    root = write_image_tree(tmp_path / "flat")
    (root / "happy").rename(root / "smiling")
    with pytest.raises(data.DataError, match="unknown emotion folder 'smiling'"):
        data.load_dataset(root)


@pytest.mark.parametrize("name, content, message", [
    ("garbage.tflite", b"this is not a flatbuffer", "not a TFLite model"),
    ("garbage.keras", b"this is not a zip", "not a Keras model"),
    ("absent.tflite", None, "model file not found"),
])
def test_eval_rejects_a_file_that_is_not_a_model(name, content, message, layouts, tmp_path):
    model = tmp_path / name
    if content is not None:
        model.write_bytes(content)
    assert_user_error(invoke("eval", "--data", layouts["csv"][0], "--model", model), message)


def test_eval_of_missing_data_is_one_clear_line(csv_model, tmp_path):
    result = invoke("eval", "--data", tmp_path / "nope.csv.gz", "--model", csv_model / "emotion.tflite")
    assert_user_error(result, "no such file")


# ---------------------------------------------------------------- loaders, cache and FER+ (no TensorFlow)

def test_a_second_load_of_the_same_csv_comes_from_the_cache(layouts, monkeypatch, tmp_path):
    path = layouts["csv.gz"][0]
    first = data.load_dataset(path)
    assert list((tmp_path / "cache").glob("*.npz"))

    def parse_again(*_arguments):
        raise AssertionError("the CSV was parsed again instead of read from the cache")

    monkeypatch.setattr(data, "_parse_csv", parse_again)
    second = data.load_dataset(path)
    assert second.fingerprint == first.fingerprint and set(second.splits) == set(first.splits)
    for name, (faces, labels) in first.splits.items():
        np.testing.assert_array_equal(second.splits[name][0], faces)
        np.testing.assert_array_equal(second.splits[name][1], labels)


def test_data_without_usage_is_split_by_the_seed_even_from_the_cache(tmp_path):
    path = write_kaggle_csv(tmp_path / "plain.csv", labelled_rows(), with_usage=False)
    first, other_seed, again = (data.load_dataset(path, seed=seed) for seed in (1, 2, 1))
    assert set(first.splits) == {"train", "validation"}
    assert not np.array_equal(first.splits["validation"][0], other_seed.splits["validation"][0])
    np.testing.assert_array_equal(first.splits["validation"][0], again.splits["validation"][0])


def test_image_folders_of_any_size_colour_and_depth_become_48px_grey_faces(tmp_path):
    root = write_image_tree(tmp_path / "tree", {"train": 4, "test": 2})
    face = draw_face(3, np.random.default_rng(0))
    cv2.imwrite(str(root / "test" / "happy" / "deep.png"), face.astype(np.uint16) * 256)
    dataset = data.load_dataset(root)
    assert (dataset.training_split(), dataset.validation_split()) == ("train", "test")
    faces, labels = dataset.splits["test"]
    assert faces.shape == (2 * len(EMOTIONS) + 1, 48, 48) and faces.dtype == np.uint8
    assert np.bincount(labels).tolist() == [2, 2, 2, 3, 2, 2, 2]
    # A 16-bit PNG is scaled to 8 bits, not wrapped around.
    deep = faces[labels == EMOTIONS.index("happy")][-1]
    assert np.abs(deep.astype(int) - face).max() <= 1


def test_a_validation_folder_is_preferred_over_a_test_folder(tmp_path):
    root = write_image_tree(tmp_path / "tree", {"train": 1, "val": 1, "test": 1})
    assert data.load_dataset(root).validation_split() == "val"


def ferplus_folder(tmp_path: Path, with_usage: bool = True, label_shift: int = 0) -> tuple[Path, list]:
    rows = labelled_rows()
    write_ferplus(tmp_path / "fer2013new.csv", rows, {0, 3, len(rows) - 1, len(rows) - 4}, label_shift)
    return write_kaggle_csv(tmp_path / "fer2013.csv", rows, with_usage), rows


def test_ferplus_majority_replaces_labels_and_drops_unnamed_or_unvoted_faces(tmp_path):
    path, rows = ferplus_folder(tmp_path, label_shift=1)
    dataset = data.load_dataset(path, ferplus="majority")
    for usage, dropped in (("Training", {0, 3}), ("PublicTest", {len(rows) - 1, len(rows) - 4})):
        kept = [label for index, (label, row_usage) in enumerate(rows) if row_usage == usage and index not in dropped]
        np.testing.assert_array_equal(dataset.splits[usage][1], (np.asarray(kept) + 1) % len(EMOTIONS))
    assert dataset.targets == {}


def test_ferplus_probability_targets_follow_the_votes_without_a_usage_column(tmp_path):
    path, rows = ferplus_folder(tmp_path, with_usage=False)
    dataset = data.load_dataset(path, ferplus="probability")
    assert sum(len(labels) for _, labels in dataset.splits.values()) == len(rows) - 4
    for name, (faces, labels) in dataset.splits.items():
        soft = dataset.targets[name]
        assert soft.shape == (len(faces), len(EMOTIONS))
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(soft.argmax(axis=1), labels)
        assert np.allclose(soft.max(axis=1), 0.8)


def test_ferplus_without_a_vote_column_names_it(tmp_path):
    path, _rows = ferplus_folder(tmp_path)
    text = (tmp_path / "fer2013new.csv").read_text().replace("Usage,", "Split,", 1)
    (tmp_path / "fer2013new.csv").write_text(text)
    with pytest.raises(data.DataError, match="missing column.*Usage"):
        data.load_dataset(path, ferplus="majority")


# ---------------------------------------------------------------- metrics, split and TTA units

def test_confusion_matrix_has_true_rows_and_predicted_columns():
    matrix = class_metrics.confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]))
    expected = np.zeros((7, 7), int)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = expected[2, 0] = 1
    np.testing.assert_array_equal(matrix, expected)


def test_summarise_averages_recall_over_present_classes_only():
    labels = np.array([0, 0, 0, 0, 1, 1, 3])
    predictions = np.array([0, 0, 0, 1, 1, 0, 3])
    summary = class_metrics.summarise(labels, predictions)
    assert summary["accuracy"] == pytest.approx(5 / 7)
    assert summary["per_class_recall"] == pytest.approx(
        {"angry": 0.75, "disgust": 0.5, "fear": 0.0, "happy": 1.0, "sad": 0.0, "surprise": 0.0, "neutral": 0.0})
    assert summary["macro_recall"] == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    assert summary["n"] == 7 and np.asarray(summary["confusion"]).sum() == 7
    json.dumps(summary)  # JSON-ready: plain floats, ints and lists


def test_summarise_of_nothing_is_zero_not_an_error():
    summary = class_metrics.summarise(np.zeros(0, int), np.zeros(0, int))
    assert (summary["accuracy"], summary["macro_recall"], summary["n"]) == (0.0, 0.0, 0)


def test_stratified_split_keeps_class_proportions_and_is_repeatable():
    counts = [50, 10, 40, 100, 60, 30, 55]
    labels = np.repeat(np.arange(7), counts)
    rows = np.arange(len(labels))
    split = data.stratified_split(rows, labels, seed=3)
    held_rows, held_labels = split["validation"]
    assert np.bincount(held_labels, minlength=7).tolist() == [round(count * 0.2) for count in counts]
    assert sorted(np.concatenate([split["train"][0], held_rows]).tolist()) == rows.tolist()
    np.testing.assert_array_equal(data.stratified_split(rows, labels, seed=3)["validation"][0], held_rows)
    assert not np.array_equal(data.stratified_split(rows, labels, seed=4)["validation"][0], held_rows)


class LeftOrRightModel:
    """Scores 'angry' when the left half of a face is brighter, else 'disgust'."""

    def scores(self, faces: np.ndarray) -> np.ndarray:
        left_brighter = faces[:, :, :24].mean(axis=(1, 2)) > faces[:, :, 24:].mean(axis=(1, 2))
        scores = np.zeros((len(faces), len(EMOTIONS)), np.float32)
        scores[:, 0], scores[:, 1] = left_brighter, ~left_brighter
        return scores


def test_tta_averages_a_face_with_its_mirror_image():
    from fakeblock.train.evaluate import CHUNK_SIZE, predict_scores

    faces = np.zeros((CHUNK_SIZE + 3, 48, 48), np.uint8)
    faces[:, :, :24] = 255
    plain = predict_scores(LeftOrRightModel(), faces)
    assert plain.shape == (len(faces), 7) and (plain[:, 0] == 1).all()
    mirrored = predict_scores(LeftOrRightModel(), faces, tta=True)
    np.testing.assert_allclose(mirrored[:, :2], 0.5)

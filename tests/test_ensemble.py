"""``fakeblock ensemble``: trained models averaged in one exported network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakeblock.classify.model_runtime import EmotionModel
from fakeblock.common.preprocess import EMOTIONS
from fakeblock.train import data
from tests.test_train import angry_and_happy_models, assert_user_error, evaluate, first_kernel, train
from tests.training_data import invoke

# cache_in_tmp (tests/conftest.py): every test gets its own model cache.
pytestmark = [pytest.mark.train, pytest.mark.timeout(300), pytest.mark.usefixtures("cache_in_tmp")]


def ensemble(data_path: Path, output: Path, *models: Path, options: tuple[str, ...] = ()):
    arguments = ["ensemble", "--data", data_path, "--output", output]
    for model in models:
        arguments += ["--model", model]
    return invoke(*arguments, *options)


def random_linear_model(path: Path, seed: int) -> Path:
    """A .keras model whose scores are a random linear function of the pixels: not mirror-symmetric."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(len(EMOTIONS), activation="softmax")])
    model.save(path)
    return path


def test_an_int8_ensemble_predicts_what_the_mean_of_its_members_predicts(layouts, tmp_path):
    data_path = layouts["csv"][0]
    angry, happy = angry_and_happy_models(tmp_path)
    result = ensemble(data_path, tmp_path / "out", angry, happy)
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "out" / "model.json").read_text())
    assert card["architecture"] == "ensemble" and card["quantization"] == "int8"
    assert [member["model"] for member in card["members"]] == [str(angry), str(happy)]
    assert (tmp_path / "out" / "confusion.png").stat().st_size > 0
    faces, _ = data.load_dataset(data_path).splits["PublicTest"]
    scores = EmotionModel(tmp_path / "out" / "emotion.tflite").scores(faces)
    assert (scores.argmax(axis=1) == EMOTIONS.index("disgust")).all()
    np.testing.assert_allclose(scores[:, EMOTIONS.index("disgust")], 0.4, atol=0.02)
    summary = evaluate(data_path, tmp_path / "out" / "emotion.tflite", tmp_path / "eval.json", "--split", "PublicTest")
    assert summary["accuracy"] == pytest.approx(card["validation"]["accuracy"])


def test_a_trained_run_folder_exports_with_its_card_and_costs(csv_model, layouts, tmp_path):
    result = ensemble(layouts["csv"][0], tmp_path / "out", csv_model, csv_model, options=("--calibration-faces", "8"))
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "out" / "model.json").read_text())
    member_card = json.loads((csv_model / "model.json").read_text())
    member_cost = member_card["layers"]["multiply_adds_per_face"]
    # how each member was trained travels with the ensemble
    assert card["members"][0]["training"]["config"] == member_card["config"]
    assert card["members"][0]["training"]["validation_accuracy"] == member_card["validation"]["accuracy"]
    assert card["layers"]["multiply_adds_per_face"] == 2 * member_cost
    assert card["members"][0]["model"] == str(csv_model / "model.keras")
    assert card["config"]["calibration_faces"] == 8
    assert set(card["validation"]["per_class_recall"]) == set(EMOTIONS)


def test_float16_export_averages_members_exactly_and_tta_makes_scores_mirror_symmetric(layouts, tmp_path):
    data_path = layouts["csv"][0]
    first, second = random_linear_model(tmp_path / "a.keras", 1), random_linear_model(tmp_path / "b.keras", 2)
    faces, _ = data.load_dataset(data_path).splits["PublicTest"]
    mirrored = faces[:, :, ::-1]
    expected = (EmotionModel(first).scores(faces) + EmotionModel(second).scores(faces)) / 2

    options = ("--quantize", "float16", "--smoothing-sigma", "0")
    assert ensemble(data_path, tmp_path / "plain", first, second, options=options).exit_code == 0
    plain = EmotionModel(tmp_path / "plain" / "emotion.tflite")
    np.testing.assert_allclose(plain.scores(faces), expected, atol=0.01)
    assert np.abs(plain.scores(faces) - plain.scores(mirrored)).max() > 0.05

    options = ("--quantize", "float16", "--tta", "--smoothing-sigma", "0")
    assert ensemble(data_path, tmp_path / "tta", first, second, options=options).exit_code == 0
    symmetric = EmotionModel(tmp_path / "tta" / "emotion.tflite")
    np.testing.assert_allclose(symmetric.scores(faces), symmetric.scores(mirrored), atol=1e-3)
    card = json.loads((tmp_path / "tta" / "model.json").read_text())
    assert card["config"]["tta"] is True and card["quantization"] == "float16"


def test_members_without_their_own_smoothing_see_faces_blurred_as_in_training(csv_model, layouts, tmp_path):
    from fakeblock.classify.blur_layer import InferenceSmoothing
    from fakeblock.classify.model_runtime import load_keras_model
    from fakeblock.common.preprocess import normalise_faces

    data_path = layouts["csv"][0]
    legacy = random_linear_model(tmp_path / "legacy.keras", 3)  # no smoothing layer, like models before it
    faces, _ = data.load_dataset(data_path).splits["PublicTest"]
    inputs = normalise_faces(faces)
    blurred = np.asarray(InferenceSmoothing()(inputs))
    expected = (np.asarray(load_keras_model(legacy)(blurred))
                + np.asarray(load_keras_model(csv_model / "model.keras")(inputs))) / 2  # it blurs for itself
    assert ensemble(data_path, tmp_path / "out", legacy, csv_model, options=("--quantize", "float16")).exit_code == 0
    np.testing.assert_allclose(EmotionModel(tmp_path / "out" / "emotion.tflite").scores(faces), expected, atol=0.01)
    card = json.loads((tmp_path / "out" / "model.json").read_text())
    assert card["config"]["smoothing_sigma_px"] == pytest.approx(0.71, abs=0.005)
    own_sigmas = [member["layers"]["inference_smoothing_sigma_px"] for member in card["members"]]
    assert own_sigmas == [None, card["config"]["smoothing_sigma_px"]]
    too_blurred = ensemble(data_path, tmp_path / "bad", legacy, options=("--smoothing-sigma", "5"))
    assert too_blurred.exit_code == 2 and "--smoothing-sigma" in too_blurred.output
    assert "Traceback" not in too_blurred.output and not (tmp_path / "bad").exists()


def test_bad_members_and_options_are_one_clear_line(csv_model, layouts, tmp_path):
    data_path = layouts["csv"][0]
    exported = csv_model / "emotion.tflite"
    assert_user_error(ensemble(data_path, tmp_path / "out", csv_model, exported), "emotion.tflite", ".keras")
    assert_user_error(ensemble(data_path, tmp_path / "out", tmp_path / "missing"), "missing", "not found")
    not_a_model = tmp_path / "junk.keras"
    not_a_model.write_text("not a model")
    assert_user_error(ensemble(data_path, tmp_path / "out", not_a_model), "junk.keras", "not a Keras model")
    assert_user_error(ensemble(data_path, tmp_path / "out", csv_model, options=("--quantize", "int4")),
                      "unknown quantization 'int4'")
    assert not (tmp_path / "out").exists()


def test_shipping_an_ensemble_replaces_the_model_its_card_and_plots(layouts, tmp_path, monkeypatch):
    from fakeblock.train import ship as ship_module

    data_path = layouts["csv"][0]
    angry, _ = angry_and_happy_models(tmp_path)
    assert ensemble(data_path, tmp_path / "out", angry).exit_code == 0
    package, docs = tmp_path / "package", tmp_path / "docs"
    package.mkdir()
    docs.mkdir()
    (package / "emotion.tflite").write_bytes(b"old model")
    (docs / "default-model-history.png").write_bytes(b"old training curves")
    monkeypatch.setattr(ship_module, "default_model_path", lambda: package / "emotion.tflite")
    monkeypatch.setattr(ship_module, "DOCS", docs)
    card = ship_module.ship(tmp_path / "out")
    # the card ships: no folder of the machine that made it (the members were in tmp_path)
    assert card["members"][0]["model"] == "angry.keras" or card["members"][0]["model"].endswith("/angry.keras")
    assert not [text for text in strings(card) if text.startswith("/")]
    assert (package / "emotion.tflite").read_bytes() == (tmp_path / "out" / "emotion.tflite").read_bytes()
    assert json.loads((package / "model.json").read_text()) == card and card["architecture"] == "ensemble"
    assert (docs / "default-model-confusion.png").read_bytes() == (tmp_path / "out" / "confusion.png").read_bytes()
    assert not (docs / "default-model-history.png").exists(), "the old model's training curves were left behind"


def strings(card: object) -> list[str]:
    """Every string in a card, at any depth."""
    if isinstance(card, dict):
        return [text for value in card.values() for text in strings(value)]
    if isinstance(card, list):
        return [text for value in card for text in strings(value)]
    return [card] if isinstance(card, str) else []


def test_training_starts_from_one_network_of_an_int8_ensemble(csv_model, layouts, tmp_path):
    # The shipped model is an int8 ensemble: each member can be turned back into floats and
    # trained on. With a learning rate of zero the first kernel stays what was read, and it is
    # the member's own kernel within half of its channel's 8-bit step.
    data_path = layouts["csv"][0]
    other = tmp_path / "other"
    assert train(data_path, other, "--seed", "2").exit_code == 0  # identical members would be merged into one
    assert ensemble(data_path, tmp_path / "pair", other, csv_model, options=("--calibration-faces", "8")).exit_code == 0
    shipped = tmp_path / "pair" / "emotion.tflite"
    assert_user_error(train(data_path, tmp_path / "which", "--init-from", shipped), "choose one with --init-member")
    assert_user_error(train(data_path, tmp_path / "third", "--init-from", shipped, "--init-member", "2"),
                      "holds networks 0 to 1")
    result = train(data_path, tmp_path / "warm", "--init-from", shipped, "--init-member", "1", "--learning-rate", "0")
    assert result.exit_code == 0, result.output
    from fakeblock.train import from_tflite

    original = from_tflite.read_folded_layers(csv_model / "emotion.tflite")[0].kernel
    step = np.abs(original).max(axis=(0, 1, 2)) / 127
    rebuilt = first_kernel(tmp_path / "warm" / "model.keras")
    assert np.all(np.abs(rebuilt - original) <= step * 0.51 + 1e-7)
    assert not np.array_equal(rebuilt, original)  # really read from the 8-bit file


def test_the_shipped_card_names_no_folder_of_the_machine_that_made_it():
    from fakeblock.classify.model_runtime import default_model_path

    card = json.loads(default_model_path().with_name("model.json").read_text())
    assert card["architecture"] == "ensemble" and len(card["members"]) == 2
    assert not [text for text in strings(card) if text.startswith("/")]

"""``fakeblock up`` refuses bad input with one clear line and a non-zero exit, before starting anything."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from fakeblock.control.cli.app import app
from tests.helpers import MEDIA, shared_file

pytestmark = pytest.mark.timeout(120)


def run_up(*arguments: str):
    result = CliRunner().invoke(app, ["up", "--no-status", "--display", "none", *arguments])
    return result


def assert_one_line_error(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], result.output


def test_missing_video_file(tmp_path):
    assert_one_line_error(run_up("--source", str(tmp_path / "missing.mp4")), "no such file")


def test_corrupt_video_file(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01 definitely not a video " * 500)
    assert_one_line_error(run_up("--source", str(corrupt)), "cannot decode")


def test_camera_that_does_not_open_suggests_source():
    result = run_up("--source", "7")
    assert_one_line_error(result, "--source")


def test_model_that_is_not_a_model(tmp_path):
    video = shared_file(MEDIA / "office-woman.mp4")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer at all" * 10)
    assert_one_line_error(run_up("--source", str(video), "--model", str(garbage)), "not a TFLite model")


def test_missing_model_file(tmp_path):
    video = shared_file(MEDIA / "office-woman.mp4")
    assert_one_line_error(run_up("--source", str(video), "--model", str(tmp_path / "none.tflite")), "not found")


@pytest.mark.train  # it builds the wrong model with TensorFlow and Keras, loaded into this process
def test_model_of_the_wrong_shape(tmp_path):
    import keras
    import tensorflow as tf

    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs))
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    wrong = tmp_path / "wrong.tflite"
    wrong.write_bytes(converter.convert())
    video = shared_file(MEDIA / "office-woman.mp4")
    assert_one_line_error(run_up("--source", str(video), "--model", str(wrong)), "model input must be")


def test_web_port_already_in_use():
    video = shared_file(MEDIA / "office-woman.mp4")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["up", "--no-status", "--source", str(video), "--display", "web",
                                          "--web-port", str(port)])
    assert_one_line_error(result, "already in use")


def test_unknown_display_output():
    video = shared_file(MEDIA / "office-woman.mp4")
    assert_one_line_error(run_up("--source", str(video), "--display", "hologram"), "unknown display output")


def test_results_in_a_missing_folder(tmp_path):
    video = shared_file(MEDIA / "office-woman.mp4")
    result = run_up("--source", str(video), "--results", str(tmp_path / "no" / "such" / "r.jsonl"))
    assert_one_line_error(result, "does not exist")


def test_record_to_stdout_is_refused():
    video = shared_file(MEDIA / "office-woman.mp4")
    assert_one_line_error(run_up("--source", str(video), "--record", "-"), "--record -")


def test_probing_a_missing_camera_prints_no_opencv_warnings(capfd):
    from fakeblock.control.supervisor.preflight import camera_opens

    assert not camera_opens(7)
    assert "WARN" not in capfd.readouterr().err

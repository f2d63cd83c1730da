"""Inference smoothing: sharp faces are blurred at inference as training augmentation blurs them."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fakeblock.classify.blur_layer import (  # noqa: E402
    TRAINING_BLUR_SIGMA_PX,
    InferenceSmoothing,
    gaussian_line,
    smoothing_sigma,
)
from fakeblock.classify.model_runtime import load_keras_model  # noqa: E402
from fakeblock.train.augment import make_augmenter  # noqa: E402
from fakeblock.train.model import make_model  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.timeout(120)]


def gaussian_kernel(sigma_px: float) -> np.ndarray:
    """The 2-D Gaussian that the layer's vertical and horizontal passes amount to."""
    line = gaussian_line(sigma_px)
    return np.outer(line, line)


def test_the_kernel_is_a_normalised_symmetric_gaussian_and_sigma_zero_is_the_identity():
    kernel = gaussian_kernel(0.71)
    assert kernel.shape == (5, 5) and kernel.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(kernel, kernel.T)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1])
    assert kernel[2, 2] == kernel.max() and kernel[2, 2] < 0.5
    identity = gaussian_kernel(0.0)
    assert identity[2, 2] == 1.0 and identity.sum() == 1.0


def test_the_layer_blurs_only_at_inference_and_keeps_flat_faces_flat():
    layer = InferenceSmoothing()
    dot = np.zeros((1, 48, 48, 1), np.float32)
    dot[0, 20, 30, 0] = 1.0
    np.testing.assert_array_equal(np.asarray(layer(dot, training=True)), dot)
    blurred = np.asarray(layer(dot, training=False))
    assert blurred.shape == dot.shape
    np.testing.assert_allclose(blurred[0, 18:23, 28:33, 0], gaussian_kernel(TRAINING_BLUR_SIGMA_PX), atol=1e-6)
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5)  # no light lost
    flat = np.full((2, 48, 48, 1), 0.3, np.float32)
    np.testing.assert_allclose(np.asarray(layer(flat)), flat, atol=1e-6)  # mirrored edges: no dark border


def test_every_architecture_starts_with_it_and_a_saved_model_keeps_it(tmp_path):
    for architecture in ("default", "wide", "seed"):
        model = make_model(architecture)
        assert isinstance(model.layers[1], InferenceSmoothing), architecture
        assert smoothing_sigma(model) == pytest.approx(TRAINING_BLUR_SIGMA_PX)
    model.save(tmp_path / "seed.keras")
    loaded = load_keras_model(tmp_path / "seed.keras")
    assert smoothing_sigma(loaded) == pytest.approx(TRAINING_BLUR_SIGMA_PX)
    faces = np.random.default_rng(0).random((4, 48, 48, 1), np.float32)
    np.testing.assert_allclose(np.asarray(loaded(faces)), np.asarray(model(faces)), atol=1e-6)


def test_the_sigma_matches_the_blur_that_augmentation_really_adds():
    """White noise keeps its variance only if unblurred: what is left tells the blur's strength."""
    noise = np.random.default_rng(1).random((256, 48, 48, 1), np.float32)
    augmenter = keras.Sequential(make_augmenter(seed=3).layers[1:4])  # shift, rotation, zoom: the resamplings
    augmented = np.asarray(augmenter(noise, training=True))[:, 12:36, 12:36]  # the centre: no mirrored fill
    blurred = np.asarray(InferenceSmoothing()(noise))[:, 12:36, 12:36]
    centred = noise[:, 12:36, 12:36]
    ratio_augmented = augmented.var() / centred.var()
    ratio_smoothed = blurred.var() / centred.var()
    assert ratio_augmented < 0.3  # augmentation blurs a lot (0.18 of the variance is left)...
    assert ratio_smoothed == pytest.approx(ratio_augmented, rel=0.2)  # ...about as much as the smoothing

"""The pipeline view of a training face: repeatable from its seed, and each step does what it says."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fakeblock.train import pipeline_view
from fakeblock.train.haar_boxes import BoxTable, load_table
from fakeblock.train.pipeline_view_settings import FACE_SIDE_RANGE_PX


def drawn_face(shade: int = 170) -> np.ndarray:
    """A 48x48 cartoon face: a light oval, two dark eyes, a dark mouth, on a mid-grey ground."""
    face = np.full((48, 48), 90, np.uint8)
    cv2.ellipse(face, (24, 25), (16, 20), 0, 0, 360, shade, -1)
    for x_px in (17, 31):
        cv2.circle(face, (x_px, 19), 3, 30, -1)
    cv2.ellipse(face, (24, 34), (8, 3), 0, 0, 360, 40, -1)
    return face


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.corrcoef(first.ravel().astype(float), second.ravel().astype(float))[0, 1])


def faces(count: int) -> np.ndarray:
    return np.stack([drawn_face(120 + 5 * index) for index in range(count)])


def test_views_are_a_function_of_the_seed_alone():
    batch = faces(12)
    first = pipeline_view.pipeline_views(batch, (4, 2), 1.0)
    assert np.array_equal(first, pipeline_view.pipeline_views(batch, (4, 2), 1.0))
    assert not np.array_equal(first, pipeline_view.pipeline_views(batch, (4, 3), 1.0))
    assert first.shape == batch.shape and first.dtype == np.uint8


def test_the_share_decides_how_many_faces_change():
    batch = faces(40)
    assert np.array_equal(pipeline_view.pipeline_views(batch, (1, 1), 0.0), batch)
    changed = [not np.array_equal(view, face) for view, face in zip(pipeline_view.pipeline_views(batch, (1, 1), 0.5),
                                                                     batch, strict=True)]
    assert 8 <= sum(changed) <= 32
    every = pipeline_view.pipeline_views(batch, (1, 1), 1.0)
    assert all(not np.array_equal(view, face) for view, face in zip(every, batch, strict=True))


def test_a_view_is_still_the_same_face():
    """Whatever the camera, codec and box do, the face is recognisably itself, not another."""
    face = cv2.GaussianBlur(drawn_face(), (0, 0), 2.0)  # a face's shading is smooth at this size
    views = pipeline_view.pipeline_views(face[np.newaxis].repeat(40, axis=0), (9, 9), 1.0)
    own = [correlation(view, face) for view in views]
    other = [correlation(view, face[::-1]) for view in views]  # the same face upside down
    assert np.median(own) > 0.8
    assert sum(mine > theirs for mine, theirs in zip(own, other, strict=True)) >= 36


def test_show_face_scales_the_face_to_a_video_size_and_says_where_it_lies():
    generator = np.random.default_rng(3)
    sides = []
    for _ in range(40):
        canvas = pipeline_view.show_face(drawn_face(), generator)
        x_px, y_px, side_px, _ = canvas.tile
        sides.append(side_px)
        tile = cv2.resize(canvas.picture[y_px:y_px + side_px, x_px:x_px + side_px], (48, 48),
                          interpolation=cv2.INTER_AREA)
        assert correlation(tile, drawn_face()) > 0.9
        assert canvas.picture.shape[0] > side_px and canvas.picture.shape[1] > side_px  # context around it
    assert FACE_SIDE_RANGE_PX[0] <= min(sides) < 90 and 140 < max(sides) <= FACE_SIDE_RANGE_PX[1]


def test_reframe_cuts_the_box_the_table_describes():
    face = drawn_face()
    canvas = pipeline_view.Canvas(cv2.copyMakeBorder(cv2.resize(face, (144, 144), interpolation=cv2.INTER_CUBIC),
                                                     48, 48, 48, 48, cv2.BORDER_CONSTANT, value=0),
                                  (48, 48, 144, 144), "none", 0)
    same = pipeline_view.reframe(canvas, canvas.picture, (1.0, 0.0, 0.0))
    assert np.abs(same.astype(int) - face).mean() < 4
    zoomed = pipeline_view.reframe(canvas, canvas.picture, (0.5, 0.0, 0.0))
    centre = cv2.resize(face[12:36, 12:36], (48, 48), interpolation=cv2.INTER_CUBIC)
    assert np.abs(zoomed.astype(int) - centre).mean() < 6
    shifted = pipeline_view.reframe(canvas, canvas.picture, (1.0, 0.25, 0.0))  # box moved right by 12 face px
    assert np.abs(shifted[:, :36].astype(int) - face[:, 12:]).mean() < 6
    assert shifted[:, 40:].max() == 0  # beyond the face: the black border


def test_jpeg_compression_costs_more_at_lower_quality_and_shows_its_blocks():
    picture = cv2.resize(drawn_face(), (160, 160), interpolation=cv2.INTER_CUBIC)
    picture = np.clip(picture + np.random.default_rng(0).normal(0, 6, picture.shape), 0, 255).astype(np.uint8)
    errors = {quality: np.abs(pipeline_view.compress_jpeg(picture, quality).astype(int) - picture).mean()
              for quality in (20, 60, 95)}
    assert errors[20] > errors[60] > errors[95] > 0
    rough = pipeline_view.compress_jpeg(picture, 20).astype(int)
    steps = np.abs(np.diff(rough, axis=1)).mean(axis=0)  # column-to-column jumps
    assert steps[7::8].mean() > 1.2 * np.delete(steps, np.s_[7::8]).mean()  # largest across block edges


def test_video_compression_round_trips_each_picture_close_but_not_exactly():
    pictures = [cv2.resize(drawn_face(shade), (side, side)) for shade, side in ((150, 100), (200, 300))]
    decoded = pipeline_view.compress_video(pictures)
    for picture, back in zip(pictures, decoded, strict=True):
        assert back.shape == picture.shape
        assert 0 < np.abs(back.astype(int) - picture).mean() < 6


def test_camera_keeps_the_picture_but_changes_its_light_and_adds_noise():
    picture = cv2.resize(drawn_face(), (120, 120))
    generator = np.random.default_rng(5)
    seen = [pipeline_view.camera(picture, generator) for _ in range(20)]
    assert all(correlation(view, picture) > 0.9 for view in seen)
    means = [view.mean() for view in seen]
    assert max(means) - min(means) > 10  # exposure and gamma vary
    assert any(len(np.unique(view[5:15, 5:15])) > 3 for view in seen)  # a flat patch gets noise


def test_the_shipped_box_table_matches_the_cascade_s_known_framing():
    """Measured by benchmarks/measure_haar_boxes.py: mostly a little tighter than the dataset's crop."""
    table = load_table()
    assert isinstance(table, BoxTable) and len(table.rows) > 1000 and 0.5 < table.found_share <= 1
    assert 0.85 < float(np.median(table.rows[:, 0])) < 1.0
    assert np.abs(np.median(table.rows[:, 1:], axis=0)).max() < 0.05


def test_the_card_lists_the_view_s_settings():
    settings = pipeline_view.parameters()
    assert settings["face_side_range_px"] == list(FACE_SIDE_RANGE_PX)
    assert settings["haar_boxes"]["measured"] == len(load_table().rows)
    assert sum(settings["codec_shares"].values()) == pytest.approx(1.0)

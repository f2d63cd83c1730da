"""Haar face detection on real photos and synthetic frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fakeblock.common.config import DetectConfig
from fakeblock.detect.core import crop_faces, detect, find_faces, load_cascade
from tests.helpers import MEDIA, shared_file


@pytest.fixture(scope="module")
def cascade():
    return load_cascade()


def test_finds_the_face_in_a_portrait(cascade):
    image = cv2.imread(str(shared_file(MEDIA / "justin.jpg")))
    boxes, crops = detect(image, cascade, DetectConfig(), 64)
    assert len(boxes) == 1
    x, y, width, height = boxes[0]
    assert width >= 48 and 0 <= x < image.shape[1] and 0 <= y < image.shape[0]
    assert crops.shape == (1, 48, 48) and crops.dtype == np.uint8


def test_no_face_in_a_photo_without_people(cascade):
    image = cv2.imread(str(shared_file(MEDIA / "no-faces.jpg")))
    boxes, crops = detect(image, cascade, DetectConfig(), 64)
    assert boxes == [] and crops.shape == (0, 48, 48)


def test_downscaled_detection_maps_boxes_back_to_full_size(cascade):
    image = cv2.imread(str(shared_file(MEDIA / "justin.jpg")))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    full = find_faces(gray, cascade, DetectConfig())
    half = find_faces(gray, cascade, DetectConfig(detect_scale=0.5))
    assert len(full) == len(half) == 1
    assert np.allclose(full[0], half[0], atol=0.2 * full[0][2])


def test_the_same_video_frame_gives_the_same_boxes_every_time(cascade):
    capture = cv2.VideoCapture(str(shared_file(MEDIA / "office-woman.mp4")))
    ok, frame = capture.read()
    capture.release()
    assert ok
    assert detect(frame, cascade, DetectConfig(), 64)[0] == detect(frame.copy(), cascade, DetectConfig(), 64)[0]


def test_blank_frame_has_no_faces_and_bad_scale_is_refused(cascade):
    blank = np.zeros((120, 160, 3), np.uint8)
    assert detect(blank, cascade, DetectConfig(), 64)[0] == []
    with pytest.raises(ValueError, match="detect_scale"):
        find_faces(blank[:, :, 0], cascade, DetectConfig(detect_scale=1.5))


def test_crops_clip_boxes_at_the_frame_edge():
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    crops = crop_faces(gray, [(80, 80, 40, 40), (0, 0, 100, 100)])
    assert crops.shape == (2, 48, 48)


def test_max_faces_keeps_the_largest(cascade):
    image = cv2.imread(str(shared_file(MEDIA / "justin.jpg")))
    small = cv2.resize(image, None, fx=0.5, fy=0.5)
    canvas = np.zeros((image.shape[0], image.shape[1] + small.shape[1], 3), np.uint8)
    canvas[:, : image.shape[1]] = image
    canvas[: small.shape[0], image.shape[1]:] = small
    boxes, _ = detect(canvas, cascade, DetectConfig(), 1)
    assert len(boxes) == 1 and boxes[0][2] > small.shape[1] * 0.3


@pytest.mark.parametrize("tracking, workers, streams, busy", [
    (True, 2, 1, 1),  # one stream keeps one worker busy: it gets every core
    (True, 2, 2, 2),
    (True, 3, 2, 2),
    (False, 2, 1, 2),  # without tracking every worker takes frames in turn
    (True, 2, 0, 2),  # streams unknown: shared among all
])
def test_the_cores_are_shared_among_the_detect_workers_that_have_streams(monkeypatch, tracking, workers, streams,
                                                                           busy):
    monkeypatch.setattr("fakeblock.common.config.os.cpu_count", lambda: 12)
    config = DetectConfig(tracking=tracking).for_workers(workers, streams=streams)
    assert config.opencv_threads == 12 // busy
    assert config.worker_count == workers
    # A host's workers numbered from 2 of a site of 4 get streams 2 and 3 of 4, 2 of 3.
    site = DetectConfig(worker_count=4, first_worker=2)
    assert site.for_workers(2, streams=3).opencv_threads == 12
    assert site.for_workers(2, streams=4).opencv_threads == 6

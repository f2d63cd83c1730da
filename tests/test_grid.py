"""Scans of parts of a frame sample exactly as the full-frame scan does: they find the
full scan's raw candidates inside them, and together its faces wherever they cover them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from fakeblock.common.config import DetectConfig
from fakeblock.detect.boxes import contains, grow, overlap_of_smaller
from fakeblock.detect.core import load_cascade
from fakeblock.detect.grid import grid_scan, grid_scan_near, merge_crops, near_members, window_positions
from fakeblock.detect.scan import ScanJob, change_job, full_frame_job, run_job
from tests.helpers import MEDIA

JUSTIN = MEDIA / "justin.jpg"


def cartoon_face(size_px: int) -> np.ndarray:
    """A drawn face (light oval, dark eyes and brows, nose, mouth) on a dark square twice its size."""
    image = np.full((2 * size_px, 2 * size_px), 60, np.uint8)
    centre, unit = size_px, size_px / 100

    def at(dx: float, dy: float) -> tuple[int, int]:
        return centre + int(dx * unit), centre + int(dy * unit)

    def axes(width: float, height: float) -> tuple[int, int]:
        return int(width * unit), int(height * unit)

    cv2.ellipse(image, at(0, 0), axes(40, 52), 0, 0, 360, 190, -1)
    for side in (-17, 17):
        cv2.ellipse(image, at(side, -12), axes(9, 5), 0, 0, 360, 40, -1)
        cv2.line(image, at(side - 10, -24), at(side + 10, -24), 70, max(1, int(4 * unit)))
    cv2.line(image, at(0, -5), at(-4, 12), 140, max(1, int(3 * unit)))
    cv2.ellipse(image, at(0, 26), axes(16, 6), 0, 0, 360, 90, -1)
    return cv2.GaussianBlur(image, (0, 0), 1.5 * unit)


def synthetic_scene() -> np.ndarray:
    """Blurred noise (which the cascade half-accepts in places) with three drawn faces."""
    scene = cv2.GaussianBlur((np.random.default_rng(0).random((360, 480)) * 255).astype(np.uint8), (0, 0), 2)
    for x, y, size_px in ((20, 30, 70), (200, 60, 110), (330, 200, 60)):
        face = cartoon_face(size_px)
        height, width = min(face.shape[0], 360 - y), min(face.shape[1], 480 - x)
        scene[y:y + height, x:x + width] = face[:height, :width]
    return scene


def images() -> list[np.ndarray]:
    found = [synthetic_scene()]
    if JUSTIN.exists():
        found.append(cv2.cvtColor(cv2.imread(str(JUSTIN)), cv2.COLOR_BGR2GRAY))
    return found


@pytest.fixture(scope="module")
def cascade() -> cv2.CascadeClassifier:
    return load_cascade()


def full_scan(gray: np.ndarray, cascade: cv2.CascadeClassifier, params: DetectConfig, min_neighbors: int):
    job = full_frame_job(gray.shape[1], gray.shape[0], params.min_size_px, params.detect_scale)
    return sorted(run_job(gray, cascade, job, params.scale_factor, min_neighbors))


def scan(gray: np.ndarray, cascade: cv2.CascadeClassifier, jobs: list[ScanJob], params: DetectConfig,
         min_neighbors: int):
    return sorted(grid_scan(gray, [cascade], jobs, params.detect_scale, params.scale_factor, params.min_size_px,
                            min_neighbors))


@pytest.mark.parametrize("params", [DetectConfig(), DetectConfig(min_size_px=24),
                                    DetectConfig(detect_scale=0.5), DetectConfig(min_size_px=40, detect_scale=0.75)])
def test_a_whole_frame_job_finds_exactly_what_the_full_frame_scan_finds(cascade, params):
    for gray in images():
        job = full_frame_job(gray.shape[1], gray.shape[0], params.min_size_px, params.detect_scale)
        faces = full_scan(gray, cascade, params, params.min_neighbors)
        assert faces, "the test image should hold faces the cascade finds"
        assert scan(gray, cascade, [job], params, params.min_neighbors) == faces
        if params.detect_scale == 1:
            assert scan(gray, cascade, [job], params, 0) == full_scan(gray, cascade, params, 0)


@pytest.mark.parametrize("params", [DetectConfig(), DetectConfig(min_size_px=24)])
def test_a_window_finds_the_full_scans_raw_candidates_inside_it(cascade, params):
    rng = np.random.default_rng(7)
    for gray in images():
        height_px, width_px = gray.shape
        everything = set(full_scan(gray, cascade, params, 0))
        for _ in range(40):
            left, top = int(rng.integers(0, width_px - 60)), int(rng.integers(0, height_px - 60))
            region = (left, top, int(rng.integers(60, width_px - left + 1)), int(rng.integers(60, height_px - top + 1)))
            smallest = int(rng.integers(params.min_size_px, 120))
            largest = None if rng.random() < 0.3 else int(smallest * rng.uniform(1, 3))
            inside = {box for box in everything if contains(region, box)
                      and smallest <= box[2] <= (largest or 10**6)}
            found = set(scan(gray, cascade, [ScanJob(region, smallest, largest, 1.0)], params, 0))
            assert inside <= found <= everything, region


@pytest.mark.parametrize("params", [DetectConfig(), DetectConfig(min_size_px=24)])
def test_a_job_with_a_reach_finds_every_raw_candidate_it_holds_beyond_its_region(cascade, params):
    rng = np.random.default_rng(11)
    beyond = 0
    for gray in images():
        height_px, width_px = gray.shape
        everything = set(full_scan(gray, cascade, params, 0))
        for _ in range(30):
            left, top = int(rng.integers(0, width_px - 20)), int(rng.integers(0, height_px - 20))
            region = (left, top, int(rng.integers(10, 80)), int(rng.integers(10, 80)))
            job = change_job(region, params.min_size_px, 1.0)
            held = {box for box in everything if job.holds(box)}
            found = set(scan(gray, cascade, [job], params, 0))
            assert held <= found <= everything, region
            beyond += sum(not contains(region, box) for box in held)
    assert beyond > 0  # candidates reaching past the region were held: the reach found them
    assert any(change_job((100, 100, 30, 30), 24, 1.0).holds(box) for box in [(80, 80, 60, 60)])
    assert not change_job((100, 100, 30, 30), 24, 1.0).holds((60, 60, 70, 70))  # beyond twice the change


def test_windows_around_the_full_scans_faces_find_exactly_those_faces(cascade):
    params = DetectConfig()
    for gray in images():
        faces = full_scan(gray, cascade, params, params.min_neighbors)
        # Two overlapping jobs per face: candidates both find count once.
        jobs = [ScanJob(grow(box, margin * box[2] // 4), params.min_size_px, None, 1.0)
                for box in faces for margin in (2, 3)]
        assert scan(gray, cascade, jobs, params, params.min_neighbors) == faces


def test_overlapping_crops_of_a_level_are_scanned_once_and_never_at_a_higher_cost():
    window = (24, 24)
    rng = np.random.default_rng(3)
    for _ in range(200):
        crops = []
        for _ in range(int(rng.integers(1, 8))):
            left, top = int(rng.integers(0, 200)), int(rng.integers(0, 200))
            crops.append((left, top, left + int(rng.integers(10, 90)), top + int(rng.integers(10, 90))))
        merged = merge_crops(crops, window)
        assert all(any(contains((m[0], m[1], m[2] - m[0], m[3] - m[1]), (c[0], c[1], c[2] - c[0], c[3] - c[1]))
                       for m in merged) for c in crops)
        assert sum(window_positions(m, window) for m in merged) <= sum(window_positions(c, window) for c in crops)
    # A window's crop inside a larger region's is scanned with it; crops far apart stay apart.
    assert merge_crops([(0, 0, 100, 100), (10, 10, 60, 60)], window) == [(0, 0, 100, 100)]
    assert merge_crops([(0, 0, 40, 40), (150, 150, 190, 190)], window) == [(0, 0, 40, 40), (150, 150, 190, 190)]


def test_scans_shared_out_over_threads_find_what_one_thread_finds(cascade):
    params = DetectConfig()
    with ThreadPoolExecutor(2) as pool:
        for gray in images():
            height_px, width_px = gray.shape
            jobs = [ScanJob((0, 0, width_px // 2 + 30, height_px), 48, 200, 1.0),
                    ScanJob((width_px // 3, 0, width_px - width_px // 3, height_px), 48, None, 1.0),
                    ScanJob((0, height_px // 4, width_px, height_px // 2), 60, 120, 1.0)]
            for min_neighbors in (0, params.min_neighbors):
                alone = scan(gray, cascade, jobs, params, min_neighbors)
                shared = sorted(grid_scan(gray, [cascade, load_cascade()], jobs, 1.0, params.scale_factor,
                                          params.min_size_px, min_neighbors, pool))
                assert shared == alone


def test_near_misses_are_the_full_scans_clusters_of_half_a_faces_candidates_that_are_no_face(cascade):
    assert near_members(DetectConfig().min_neighbors) == 3  # a face needs 6 raw candidates (more than 5)
    near_seen = 0
    for params in (DetectConfig(), DetectConfig(min_size_px=24)):
        for gray in images():
            job = full_frame_job(gray.shape[1], gray.shape[0], params.min_size_px, params.detect_scale)
            scanned = grid_scan_near(gray, [cascade], [job], params.detect_scale, params.scale_factor,
                                     params.min_size_px, params.min_neighbors)
            faces = full_scan(gray, cascade, params, params.min_neighbors)
            loose = full_scan(gray, cascade, params, near_members(params.min_neighbors) - 1)
            assert sorted(scanned.faces) == faces
            assert sorted(scanned.near) == [box for box in loose
                                            if all(overlap_of_smaller(box, face) < 0.5 for face in faces)]
            near_seen += len(scanned.near)
    assert near_seen  # the blurred noise holds a place the cascade half accepts

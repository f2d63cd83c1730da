"""The tracker's pure parts, without sockets or the cascade: a fake finder "detects" the
faces a test placed, when a scan job's region and size range hold them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fakeblock.detect.boxes import contains, iou, one_box_per_face
from fakeblock.detect.scan import Scanned, coverage_cycle, level_step, pyramid_jobs
from fakeblock.detect.tracking import WATCH_FRAMES, FaceTracker, TrackerSettings

WIDTH_PX, HEIGHT_PX = 320, 240
SETTINGS = TrackerSettings(min_size_px=24, scale=1.0, scale_factor=1.1, scan_cycle_frames=6)


def face_pattern(seed: int, size_px: int) -> np.ndarray:
    """A textured square that looks like itself at any size and unlike other seeds."""
    coarse = np.random.default_rng(seed).integers(0, 256, (8, 8)).astype(np.uint8)
    return np.kron(coarse, np.ones((math.ceil(size_px / 8),) * 2, np.uint8))[:size_px, :size_px]


class Scene:
    """A flat background with faces pasted in, and a finder that sees exactly those faces."""

    def __init__(self, background: int = 90):
        self.background = background
        self.faces: dict[int, tuple[int, int, int]] = {}  # seed -> (x, y, size)
        self.visible_to_finder: set[int] | None = None  # None: every face can be found
        self.jobs: list = []

    def frame(self) -> np.ndarray:
        image = np.full((HEIGHT_PX, WIDTH_PX), self.background, np.uint8)
        for seed, (x, y, size) in self.faces.items():
            image[y:y + size, x:x + size] = face_pattern(seed, size)
        return image

    def boxes(self, seeds=None) -> dict[int, tuple[int, int, int, int]]:
        return {seed: (x, y, size, size) for seed, (x, y, size) in self.faces.items() if seeds is None or seed in seeds}

    def find(self, gray, jobs):
        self.jobs.extend(jobs)
        found = []
        for job in jobs:
            for box in self.boxes(self.visible_to_finder).values():
                if job.holds(box):
                    found.append(box)
        return found


def run(scene: Scene, tracker: FaceTracker):
    scene.jobs = []
    return tracker.step(scene.frame())


def followed(faces: dict[int, tuple[int, int, int]], frames: int) -> tuple[Scene, FaceTracker, list]:
    """A scene showing ``faces`` and a tracker fed ``frames`` frames of it, with what it returned for each."""
    scene = Scene()
    scene.faces = dict(faces)
    tracker = FaceTracker(SETTINGS, scene.find)
    return scene, tracker, [run(scene, tracker) for _ in range(frames)]


def ids_at(faces, box) -> list[int]:
    return [face.track_id for face in faces if iou(face.box, box) >= 0.5]


def test_a_moving_face_keeps_one_id_and_is_found_in_small_windows():
    scene = Scene()
    tracker = FaceTracker(SETTINGS, scene.find)
    seen = set()
    for step in range(40):
        scene.faces = {1: (20 + 4 * step, 60 + step, 60)}
        faces = run(scene, tracker)
        assert [face.box for face in faces] == [scene.boxes()[1]], f"frame {step}"
        seen.update(face.track_id for face in faces)
        if step > 0:
            # After the first frame no job scans the whole frame: the window finds the face.
            assert all(job.region != (0, 0, WIDTH_PX, HEIGHT_PX) or job.min_size_px > 24 for job in scene.jobs)
    assert seen == {1}


def test_a_face_that_leaves_ends_its_track():
    scene, tracker, outputs = followed({1: (100, 80, 60)}, 10)
    assert all(len(faces) == 1 for faces in outputs)
    scene.faces = {}
    faces = run(scene, tracker)
    assert faces == []  # the picture there changed: no coasting over a face that is gone
    for _ in range(20):
        assert run(scene, tracker) == []
    assert tracker.tracks == []


def test_a_missed_face_that_is_still_there_keeps_its_box_for_a_while():
    scene, tracker, _ = followed({1: (100, 80, 60)}, 10)
    scene.visible_to_finder = set()  # the cascade misses it, the pixels have not changed
    held = [len(run(scene, tracker)) for _ in range(30)]
    assert held[0] == 1 and held[-1] == 0
    assert 1 < sum(held) <= 16


def test_a_new_face_in_a_still_frame_is_found_at_once_where_the_picture_changed():
    scene, tracker, _ = followed({1: (20, 20, 50)}, 10)
    scene.faces[2] = (200, 150, 60)
    faces = run(scene, tracker)
    assert sorted(face.box for face in faces) == sorted(scene.boxes().values())
    assert len({face.track_id for face in faces}) == 2


def test_every_new_changed_region_is_scanned_in_its_first_frame_whatever_the_budget():
    scene, tracker, _ = followed({}, 3)
    # Four faces at once in the four corners: more changed area than one frame's budget.
    scene.faces = {1: (10, 10, 60), 2: (240, 10, 60), 3: (10, 160, 60), 4: (240, 160, 60)}
    faces = run(scene, tracker)
    assert sorted(face.box for face in faces) == sorted(scene.boxes().values())


def test_a_face_that_appears_without_any_motion_is_found_within_the_scan_cycle():
    scene = Scene()
    scene.faces = {2: (180, 100, 70)}
    tracker = FaceTracker(SETTINGS, scene.find)
    scene.visible_to_finder = set()
    for _ in range(5):
        assert run(scene, tracker) == []
    scene.visible_to_finder = {2}  # from now on the cascade would see it; nothing moves
    found_after = next(step for step in range(1, 3 * SETTINGS.scan_cycle_frames)
                       if run(scene, tracker))
    assert found_after <= SETTINGS.scan_cycle_frames


def test_a_scene_cut_starts_every_track_afresh():
    scene = Scene(background=40)
    tracker = FaceTracker(SETTINGS, scene.find)
    scene.faces = {1: (50, 50, 60)}
    first = run(scene, tracker)
    for _ in range(5):
        run(scene, tracker)
    scene.background, scene.faces = 220, {3: (52, 50, 60)}  # another shot, a face in the same place
    faces = run(scene, tracker)
    assert [job.region for job in scene.jobs] == [(0, 0, WIDTH_PX, HEIGHT_PX)]
    assert len(faces) == 1 and faces[0].track_id != first[0].track_id


def test_a_new_face_where_a_tracked_one_was_gets_a_new_id():
    scene, tracker, outputs = followed({1: (100, 80, 60)}, 5)
    old = outputs[-1][0].track_id
    scene.faces = {7: (104, 82, 58)}
    faces = run(scene, tracker)
    assert len(faces) == 1 and faces[0].track_id != old


def test_two_overlapping_boxes_of_one_face_give_one_face():
    assert one_box_per_face([(10, 10, 100, 100), (40, 70, 40, 40), (200, 10, 50, 50)]) == [
        (10, 10, 100, 100), (200, 10, 50, 50)]
    scene = Scene()
    tracker = FaceTracker(SETTINGS, lambda gray, jobs: [(100, 80, 60, 60), (120, 120, 24, 24)]
                          if any(contains(job.region, (100, 80, 60, 60)) for job in jobs) else [])
    scene.faces = {1: (100, 80, 60)}
    for _ in range(5):
        assert [face.box for face in tracker.step(scene.frame())] == [(100, 80, 60, 60)]


def test_the_same_frames_give_the_same_tracks():
    def replay():
        scene = Scene()
        tracker = FaceTracker(SETTINGS, scene.find)
        out = []
        for step in range(30):
            scene.faces = {1: (10 + 3 * step, 40, 50), 2: (250 - 2 * step, 150, 40)}
            if step == 15:
                scene.faces[3] = (150, 10, 30)
            out.append([(face.box, face.track_id) for face in run(scene, tracker)])
        return out
    assert replay() == replay()


@pytest.mark.parametrize("width_px, height_px", [(320, 240), (640, 480), (1280, 720), (100, 900)])
def test_the_coverage_cycle_scans_every_place_at_every_size(width_px, height_px):
    step = level_step(1.1)
    jobs = [job for frame_jobs in coverage_cycle(width_px, height_px, 24, 1.0, step, 7) for job in frame_jobs]
    assert sorted(map(repr, jobs)) == sorted(map(repr, pyramid_jobs(width_px, height_px, 24, 1.0, step)))
    rng = np.random.default_rng(5)
    for _ in range(400):
        size = int(rng.integers(24, min(width_px, height_px) + 1))
        box = (int(rng.integers(0, width_px - size + 1)), int(rng.integers(0, height_px - size + 1)), size, size)
        assert any(contains(job.region, box) and job.min_size_px <= size <= (job.max_size_px or 10**6)
                   for job in jobs), box


def test_motion_beside_a_face_the_last_frame_missed_is_scanned_at_every_size():
    scene, tracker, _ = followed({1: (100, 80, 60)}, 5)
    scene.visible_to_finder = {2}  # the cascade misses face 1 from now on; its pixels stay
    run(scene, tracker)
    # A small face appears in the missed face's window, far below the sizes the window looks for.
    scene.faces[2] = (152, 60, 28)
    faces = run(scene, tracker)
    assert scene.boxes()[2] in [face.box for face in faces]


def reaches(jobs, box) -> bool:
    """True when one of the jobs could find ``box``: it lies in the job's region and size range."""
    return any(job.holds(box) for job in jobs)


def test_a_still_face_rests_between_scans_but_is_confirmed_every_third_frame():
    scene, tracker, outputs = followed({1: (100, 80, 60)}, 6)
    ids = {face.track_id for faces in outputs for face in faces}
    scanned = []
    for _ in range(18):
        faces = run(scene, tracker)
        assert [face.box for face in faces] == [scene.boxes()[1]]
        ids.update(face.track_id for face in faces)
        scanned.append(reaches(scene.jobs, scene.boxes()[1]))
    assert ids == {1}
    assert scanned.count(False) >= 6  # resting frames: no scan could have found the face
    assert all(any(scanned[start:start + 3]) for start in range(len(scanned) - 2))  # never 3 in a row


def test_a_detection_that_comes_and_goes_never_rests():
    scene = Scene()
    tracker = FaceTracker(SETTINGS, scene.find)
    scene.faces = {1: (100, 80, 60)}
    for step in range(24):
        scene.visible_to_finder = None if step % 2 == 0 else set()  # found in every other frame
        run(scene, tracker)
        if step > 0:
            assert reaches(scene.jobs, scene.boxes()[1]), f"frame {step}"


def test_a_box_found_inside_a_resting_face_is_part_of_that_face():
    # The inner box is of the coverage cycle's first level, the face of the next.
    face, inner = (100, 80, 70, 70), (110, 92, 36, 36)
    jobs_seen = []

    def find(gray, jobs):
        jobs_seen.append(jobs)
        return [box for box in (face, inner) if reaches(jobs, box)]

    scene = Scene()
    scene.faces = {1: (100, 80, 70)}
    tracker = FaceTracker(SETTINGS, find)
    outputs = [tracker.step(scene.frame()) for _ in range(40)]
    assert all([(f.box, f.track_id) for f in faces] == [(face, 1)] for faces in outputs)
    # The case at stake happened: a frame where only the inner box could be found.
    assert any(reaches(jobs, inner) and not reaches(jobs, face) for jobs in jobs_seen)


def test_a_changed_region_that_then_holds_still_is_scanned_once_and_one_that_keeps_changing_every_frame():
    def hot_scans(changing: bool) -> list[bool]:
        scene = Scene()
        tracker = FaceTracker(SETTINGS, scene.find)
        scene.visible_to_finder = set()  # what appears is no face the cascade finds
        for _ in range(3):
            run(scene, tracker)
        scanned = []
        for step in range(10):
            scene.faces = {step if changing else 0: (100, 80, 60)}
            run(scene, tracker)
            # Scans of the changed region: the jobs that reach the face, other than the coverage cycle's.
            cycle = [job for frame_jobs in tracker.cycle for job in frame_jobs]
            scanned.append(any(reaches([job], (100, 80, 60, 60)) for job in scene.jobs if job not in cycle))
        return scanned

    # Once scanned, a picture that holds still would show the cascade the same thing again.
    assert hot_scans(changing=False) == [True] + [False] * 9
    # Something new in every frame (the picture unlike what the last scan saw) is scanned every frame.
    assert hot_scans(changing=True) == [True] * 10


def test_a_small_face_appearing_beside_a_followed_face_is_found_at_once():
    scene, tracker, outputs = followed({1: (100, 80, 80)}, 5)
    assert all(len(faces) == 1 for faces in outputs)
    # Inside face 1's window (35 % of 80 px beyond its box) but clear of the face itself,
    # and far smaller than the sizes its window looks for.
    scene.faces[2] = (182, 60, 26)
    faces = run(scene, tracker)
    assert scene.boxes()[2] in [face.box for face in faces]


SLOW_CYCLE = TrackerSettings(min_size_px=24, scale=1.0, scale_factor=1.1, scan_cycle_frames=60)


class ShimmeringScene(Scene):
    """A scene with squares of texture whose brightness flickers every frame (a screen, leaves
    in the wind): motion that never looks different, drawn under the faces."""

    def __init__(self, squares: list[tuple[int, int, int]]):
        super().__init__()
        self.squares, self.count = squares, 0

    def frame(self) -> np.ndarray:
        self.count += 1
        image = np.full((HEIGHT_PX, WIDTH_PX), self.background, np.uint8)
        for x, y, size in self.squares:
            image[y:y + size, x:x + size] = face_pattern(999, size) // 2 + 40 * (self.count % 2)
        for seed, (x, y, size) in self.faces.items():
            image[y:y + size, x:x + size] = face_pattern(seed, size)
        return image


def frames_to_find(scene: Scene, tracker: FaceTracker, seed: int, place: tuple[int, int, int],
                   limit: int = 12) -> int | None:
    """Show face ``seed`` at ``place``, seen by the finder: the frame it is first returned in (1: at once)."""
    scene.faces[seed] = place
    scene.visible_to_finder = {seed}
    for frame in range(1, limit + 1):
        if scene.boxes()[seed] in [face.box for face in run(scene, tracker)]:
            return frame
    return None


@pytest.mark.parametrize("warm_frames", [15, 30, 41, 55])
def test_a_face_appearing_where_the_picture_keeps_changing_is_found_by_the_third_frame(warm_frames):
    # A large region that flickers long enough to have had its scans and gone cold; then a
    # small face appears in its corner, which hardly changes how the region looks.
    scene = ShimmeringScene([(60, 40, 160)])
    tracker = FaceTracker(SLOW_CYCLE, scene.find)
    scene.visible_to_finder = set()
    for _ in range(warm_frames):
        run(scene, tracker)
    found = frames_to_find(scene, tracker, 7, (70, 50, 36))
    assert found is not None and found <= 3


@pytest.mark.parametrize("warm_frames", [5, 8, 13, 21])
def test_a_face_only_part_of_which_changed_is_found_at_once(warm_frames):
    # A face-sized square already there (not a face to the finder); then only its middle
    # half changes and the finder sees the whole square as a face: the face reaches a
    # quarter of its side beyond the changed pixels on every side.
    scene = Scene()
    tracker = FaceTracker(SLOW_CYCLE, scene.find)
    scene.visible_to_finder = set()
    scene.faces = {4: (120, 70, 96)}
    for _ in range(warm_frames):
        run(scene, tracker)
    scene.faces[5] = (144, 94, 48)
    scene.visible_to_finder = {4}
    assert scene.boxes()[4] in [face.box for face in run(scene, tracker)]


def textured_world(width_px: int, height_px: int, seed: int = 3) -> np.ndarray:
    """A scene with texture at every place (a pan over it changes most pixels), coarse enough
    to survive the tracker's small blurred copy."""
    coarse = np.random.default_rng(seed).integers(40, 200, (height_px // 8 + 1, width_px // 8 + 1)).astype(np.uint8)
    blocks = np.kron(coarse, np.ones((8, 8), np.uint8))[:height_px, :width_px]
    return np.ascontiguousarray(np.clip(blocks.astype(np.float32), 0, 255).astype(np.uint8))


class PanningScene(Scene):
    """A camera panning right over a wide textured scene, ``speed_px`` a frame; faces sit in the
    scene and the finder sees those wholly in view."""

    def __init__(self, speed_px: int):
        super().__init__()
        self.world = textured_world(4 * WIDTH_PX, HEIGHT_PX)
        self.world_faces: dict[int, tuple[int, int, int]] = {}
        self.view_x, self.speed_px = 0, speed_px

    def advance(self) -> None:
        self.view_x += self.speed_px
        self.faces = {seed: (x - self.view_x, y, size) for seed, (x, y, size) in self.world_faces.items()
                      if self.view_x <= x and x + size <= self.view_x + WIDTH_PX}

    def frame(self) -> np.ndarray:
        world = self.world.copy()
        for seed, (x, y, size) in self.world_faces.items():
            world[y:y + size, x:x + size] = face_pattern(seed, size)
        return np.ascontiguousarray(world[:, self.view_x:self.view_x + WIDTH_PX])


@pytest.mark.parametrize(("speed_px", "size_px"), [(2, 40), (4, 60), (6, 100), (3, 30)])
def test_a_face_a_pan_brings_into_view_is_found_when_it_is_whole_and_the_pan_is_not_scanned(speed_px, size_px):
    scene = PanningScene(speed_px)
    scene.world_faces = {1: (60, 100, 48), 2: (WIDTH_PX + 30, 60, size_px)}  # one in view, one coming
    tracker = FaceTracker(SLOW_CYCLE, scene.find)
    cycle_jobs = {job for share in tracker.cycle for job in share}
    ids, whole_at, found_at = set(), None, None
    for frame in range(1, 40):
        scene.advance()
        faces = run(scene, tracker)
        if frame == 1:
            cycle_jobs = {job for share in tracker.cycle for job in share}
            continue  # the first frame is scanned whole
        ids.update(face.track_id for face in faces if iou(face.box, scene.boxes().get(1, (0, 0, 0, 0))) >= 0.5)
        if 2 in scene.faces and whole_at is None:
            whole_at = frame
        if whole_at is not None and found_at is None and scene.boxes()[2] in [face.box for face in faces]:
            found_at = frame
        # The pan moved every textured pixel; what is scanned beyond the followed faces'
        # windows and the coverage cycle is the strip that came into view and its reach.
        changes = [job for job in scene.jobs if job not in cycle_jobs and job.reach_share]
        assert sum(job.region[2] * job.region[3] for job in changes) < 0.25 * WIDTH_PX * HEIGHT_PX
    assert whole_at is not None and found_at == whole_at
    assert len(ids) == 1  # the face that came along with the scene kept its id


def test_a_still_camera_reports_no_camera_move_and_a_moving_object_is_a_change():
    from fakeblock.detect.motion import find_motion, revealed_edges, small_copy

    world = textured_world(2 * WIDTH_PX, HEIGHT_PX)
    panned = find_motion(small_copy(world[:, :WIDTH_PX]), small_copy(world[:, 6:WIDTH_PX + 6]), WIDTH_PX, HEIGHT_PX)
    assert panned.camera_shift_px[0] == pytest.approx(-6, abs=1.5) and abs(panned.camera_shift_px[1]) < 1.5
    assert panned.changed_share < 0.05 and not panned.scene_cut
    [edge] = revealed_edges(panned, WIDTH_PX, HEIGHT_PX)
    assert edge[0] + edge[2] == WIDTH_PX and edge[3] == HEIGHT_PX and 6 <= edge[2] <= 16
    flat = np.full((HEIGHT_PX, WIDTH_PX), 90, np.uint8)
    moved = flat.copy()
    flat[100:160, 100:160] = face_pattern(5, 60)
    moved[100:160, 108:168] = face_pattern(5, 60)
    objects = find_motion(small_copy(flat), small_copy(moved), WIDTH_PX, HEIGHT_PX)
    assert objects.camera_shift_px == (0.0, 0.0) and objects.regions
    assert revealed_edges(objects, WIDTH_PX, HEIGHT_PX) == []


class UnsureScene(Scene):
    """A still scene whose one face the finder is unsure of: in the frames listed in
    ``found_in`` a scan that holds it finds it, in the others such a scan sees only a near
    miss there (as the cascade's raw candidates of a small or blurred face come and go),
    ``grown`` times the face's side about its centre (a cluster of a few raw candidates is
    less sure of the face's size than a face's: on the stress corpus's crowd, a 100-px near
    miss where the face was found at 56 px)."""

    def __init__(self, found_in: set[int], grown: float = 1.0):
        super().__init__()
        self.found_in, self.grown, self.frame_number = found_in, grown, 0

    def find(self, gray, jobs):
        self.jobs.extend(jobs)
        holding = [box for box in self.boxes().values() if any(job.holds(box) for job in jobs)]
        if self.frame_number in self.found_in:
            return Scanned(holding, [])
        near = []
        for x, y, side, _ in holding:
            grown_px = round(side * self.grown)
            near.append((x + side // 2 - grown_px // 2, y + side // 2 - grown_px // 2, grown_px, grown_px))
        return Scanned([], near)


def frames_found(scene: UnsureScene, frames: int) -> set[int]:
    """The frames, of ``frames`` fed to a new tracker, in which it finds the scene's face 3."""
    tracker = FaceTracker(SLOW_CYCLE, scene.find)
    found = set()
    for frame in range(frames):
        scene.frame_number = frame
        if scene.boxes()[3] in [face.box for face in run(scene, tracker)]:
            found.add(frame)
    return found


def test_a_face_the_finder_is_unsure_of_is_found_in_every_frame_a_full_scan_would_find_it():
    # Found now and then, in runs and alone, with gaps longer than a track outlives its misses.
    found_in = {40, 41, 42, 66, 90, 91, 115}
    scene = UnsureScene(found_in)
    scene.faces = {3: (200, 150, 40)}
    # The first near miss comes once the coverage cycle passes; from then on the tracker
    # looks there every frame, so it finds the face in every frame the finder would.
    assert found_in <= frames_found(scene, 120)


def test_a_face_found_at_another_size_than_its_near_miss_is_found_there():
    found_in = {40, 41, 66, 90}
    scene = UnsureScene(found_in, grown=1.8)
    scene.faces = {3: (200, 150, 40)}
    assert found_in <= frames_found(scene, 100)


def test_a_place_that_stops_looking_like_a_face_is_watched_no_longer():
    scene = UnsureScene(set())
    scene.faces = {3: (200, 150, 40)}
    tracker = FaceTracker(SLOW_CYCLE, scene.find)
    for frame in range(len(tracker.cycle) + 1):
        scene.frame_number = frame
        run(scene, tracker)
    assert tracker.watched
    scene.faces = {}  # gone: nothing near a face there any more
    for _ in range(WATCH_FRAMES):
        run(scene, tracker)
    assert not tracker.watched
    run(scene, tracker)
    assert not [job for job in scene.jobs if job.region[2] < WIDTH_PX and contains(job.region, (200, 150, 40, 40))
                and not job.reach_share and job not in {job for share in tracker.cycle for job in share}]

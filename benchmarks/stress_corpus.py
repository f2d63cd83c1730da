"""Build the tracking stress corpus: generated clips of PublicTest faces, each with its ground truth.

Every clip is what the repository's own clips are not: faces replaced in place, hard cuts
with people at the same places, a camera that pans and zooms, and many small faces moving
along the frame's edges.  The truth (``clip.truth.json``, as ``make_video.py`` writes it)
lists per frame each face's tile box, emotion and ``face``: one number per person, a new
one whenever another person takes a place.  Usage::

    python benchmarks/stress_corpus.py --out-dir /tmp/fakeblock-stress
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from make_video import DEFAULT_DATA, face_tile  # noqa: E402 (a sibling script)

from fakeblock.common.model_io import EMOTIONS
from fakeblock.train.data import load_dataset

LOGGER = logging.getLogger("stress_corpus")
# A face is in the truth while this share of its tile is in view: inside the frame, not under another face.
MIN_VISIBLE_SHARE = 0.8


def background(generator: np.random.Generator, width_px: int, height_px: int, tint: tuple[int, int, int]) -> np.ndarray:
    """Smooth coloured noise with stripes, tinted: texture for the cascade to reject."""
    noise = generator.random((height_px // 8, width_px // 8, 3)) * 255
    image = cv2.resize(noise.astype(np.uint8), (width_px, height_px), interpolation=cv2.INTER_CUBIC)
    image = cv2.addWeighted(image, 0.7, np.full_like(image, tint), 0.3, 0)
    for x in range(0, width_px, 40):
        cv2.line(image, (x, 0), (x + 120, height_px), (90, 110, 130), 2)
    return image


class Clip:
    """Writes one clip's frames and collects its truth."""

    def __init__(self, path: Path, width_px: int, height_px: int, fps: float, codec: str):
        self.path, self.width_px, self.height_px, self.fps = path, width_px, height_px, fps
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width_px, height_px))
        if not self.writer.isOpened():
            raise SystemExit(f"cannot write {path} with {codec}")
        self.truth: list[list[dict]] = []
        self.cuts: list[int] = []

    def add(self, image: np.ndarray, faces: list[tuple[list[int], str, int]],
            covers: tuple[list[int], ...] = ()) -> None:
        """One frame and its faces ``(box, emotion, person)``, pasted in that order, then the
        ``covers`` boxes drawn over them: a face whose tile is mostly outside the frame, under
        the faces pasted after it or under a cover is left out."""
        self.writer.write(image)
        listed = []
        for index, (box, emotion, person) in enumerate(faces):
            x, y, width, height = box
            seen = np.zeros((height, width), bool)
            seen[max(0, -y):max(0, self.height_px - y), max(0, -x):max(0, self.width_px - x)] = True
            for above in [other for other, *_rest in faces[index + 1:]] + list(covers):
                left, top = above[0] - x, above[1] - y
                seen[max(0, top):max(0, top + above[3]), max(0, left):max(0, left + above[2])] = False
            if seen.mean() >= MIN_VISIBLE_SHARE:
                listed.append({"box": box, "emotion": emotion, "face": person})
        self.truth.append(listed)

    def close(self) -> None:
        """Finish the file and write the truth beside it."""
        self.writer.release()
        Path(f"{self.path}.truth.json").write_text(json.dumps({
            "frames": self.truth, "fps": self.fps, "width": self.width_px, "height": self.height_px,
            "cuts": self.cuts}))


def paste(image: np.ndarray, tile: np.ndarray, x: int, y: int) -> list[int]:
    """Paste ``tile`` at ``(x, y)``, cut at the frame's edges; its whole box."""
    height_px, width_px = image.shape[:2]
    left, top = max(0, x), max(0, y)
    right, bottom = min(width_px, x + tile.shape[1]), min(height_px, y + tile.shape[0])
    if right > left and bottom > top:
        image[top:bottom, left:right] = tile[top - y:bottom - y, left - x:right - x]
    return [x, y, tile.shape[1], tile.shape[0]]


class People:
    """PublicTest faces handed out as people: each call a new person and face."""

    def __init__(self, faces: np.ndarray, labels: np.ndarray, generator: np.random.Generator):
        self.faces, self.labels, self.generator, self.count = faces, labels, generator, 0

    def next(self) -> tuple[int, np.ndarray, str]:
        """A new person: their number, 48x48 face and emotion."""
        index = int(self.generator.integers(len(self.faces)))
        self.count += 1
        return self.count, self.faces[index], EMOTIONS[int(self.labels[index])]


def replaced(people: People, generator: np.random.Generator, path: Path, seconds: float) -> None:
    """640x480, 30 fps: four still places, each taken by a new person every 0.3-1 s (at its own times)."""
    clip = Clip(path, 640, 480, 30.0, "mp4v")
    scene = background(generator, 640, 480, (120, 120, 120))
    places = [(30, 40, 160), (250, 60, 150), (440, 30, 170), (150, 290, 150)]
    current = [people.next() for _ in places]
    changes = [int(generator.integers(9, 31)) for _ in places]
    for frame in range(round(seconds * clip.fps)):
        image, faces = scene.copy(), []
        for slot, (x, y, size) in enumerate(places):
            if frame == changes[slot]:
                current[slot], changes[slot] = people.next(), frame + int(generator.integers(9, 31))
            person, face, emotion = current[slot]
            faces.append((paste(image, face_tile(face, size), x, y), emotion, person))
        clip.add(image, faces)
    clip.close()


def cuts(people: People, generator: np.random.Generator, path: Path, seconds: float) -> None:
    """960x540, 25 fps: shots of 1-2 s with new people at the same places; half the cuts keep the
    background (a studio), half change it."""
    clip = Clip(path, 960, 540, 25.0, "mp4v")
    places = [(80, 120, 150), (400, 90, 170), (700, 150, 130)]
    scene = background(generator, 960, 540, (100, 120, 140))
    frame = 0
    total = round(seconds * clip.fps)
    while frame < total:
        if frame and generator.random() < 0.5:
            tint = tuple(int(value) for value in generator.integers(40, 220, 3))
            scene = background(generator, 960, 540, tint)
        clip.cuts.append(frame)
        shot = [(people.next(), generator.uniform(-0.5, 0.5, 2)) for _ in places]
        for step in range(int(generator.integers(25, 51))):
            if frame >= total:
                break
            image, faces = scene.copy(), []
            for (x, y, size), ((person, face, emotion), drift) in zip(places, shot, strict=True):
                box = paste(image, face_tile(face, size), round(x + drift[0] * step), round(y + drift[1] * step))
                faces.append((box, emotion, person))
            clip.add(image, faces)
            frame += 1
    clip.close()


def moving_faces(people: People, generator: np.random.Generator, clip: Clip, scene: np.ndarray, count: int,
                 sizes_px: tuple[int, int], speeds_px: tuple[float, float], seconds: float,
                 camera: Callable[[int], tuple[float, float, float]] | None = None,
                 place: Callable[[int, int], tuple[float, float]] | None = None) -> None:
    """``count`` faces moving over ``scene``, bouncing off its edges; several start on an edge and move along it.

    ``camera(frame)`` gives ``(left, top, zoom)`` of the view on a larger scene (None: the scene is the frame);
    ``place(index, size)`` where face ``index`` starts, instead of anywhere with some on an edge.
    """
    height_px, width_px = scene.shape[:2]
    movers = []
    for index in range(count):
        size = int(generator.integers(*sizes_px))
        speed = generator.uniform(*speeds_px)
        angle = generator.uniform(0, 2 * np.pi)
        velocity = np.array([np.cos(angle), np.sin(angle)]) * speed
        if place is not None:
            movers.append([people.next(), size, np.array(place(index, size), float), velocity])
            continue
        position = np.array([generator.uniform(0, width_px - size), generator.uniform(0, height_px - size)])
        if index % 3 == 0:  # along the top or bottom edge
            position[1] = 0 if index % 2 else height_px - size
            velocity = np.array([speed, 0.0])
        movers.append([people.next(), size, position, velocity])
    for frame in range(round(seconds * clip.fps)):
        canvas, placed = scene.copy(), []
        for (person, face, emotion), size, position, velocity in movers:
            position += velocity
            for axis, limit in ((0, width_px - size), (1, height_px - size)):
                if not 0 <= position[axis] <= limit:
                    velocity[axis] = -velocity[axis]
                    position[axis] = min(max(position[axis], 0), limit)
            box = paste(canvas, face_tile(face, size), round(position[0]), round(position[1]))
            placed.append((box, emotion, person))
        if camera is None:
            clip.add(canvas, placed)
            continue
        left, top, zoom = camera(frame)
        view_width, view_height = clip.width_px / zoom, clip.height_px / zoom
        view = canvas[round(top):round(top + view_height), round(left):round(left + view_width)]
        image = cv2.resize(view, (clip.width_px, clip.height_px), interpolation=cv2.INTER_AREA)
        mapped = [([round((x - left) * zoom), round((y - top) * zoom), round(width * zoom), round(height * zoom)],
                   emotion, person) for (x, y, width, height), emotion, person in placed]
        clip.add(image, mapped)
    clip.close()


def small_faces(people: People, generator: np.random.Generator, path: Path, seconds: float) -> None:
    """1280x720, 24 fps, MJPG: 10 faces of 40-70 px moving at 0.5-3 px a frame, some along the edges."""
    clip = Clip(path, 1280, 720, 24.0, "MJPG")
    moving_faces(people, generator, clip, background(generator, 1280, 720, (90, 140, 90)), 10, (40, 71), (0.5, 3.0),
                 seconds)


def pan_zoom(people: People, generator: np.random.Generator, path: Path, seconds: float) -> None:
    """1280x720, 30 fps: a camera panning across a 2560x1440 scene of 10 slow faces and zooming in and out.

    Each face is put where the camera looks at some moment of the clip, those moments spread
    over it.  Placed anywhere on the scene, some were never in view (the camera sweeps a band
    of it): six faces left four people in the truth, and its accuracy rested on them.
    """
    clip = Clip(path, 1280, 720, 30.0, "mp4v")
    frames = round(seconds * clip.fps)
    count = 10

    def camera(frame: int) -> tuple[float, float, float]:
        phase = frame / max(1, frames - 1)
        zoom = 1.0 + 0.6 * np.sin(np.pi * phase)  # in to 1.6x and back out
        view_width, view_height = 1280 / zoom, 720 / zoom
        # Across the scene, tilting down half its free height and back up.
        return phase * (2560 - view_width), (1 - np.cos(2 * np.pi * phase)) / 4 * (1440 - view_height), zoom

    def place(index: int, size: int) -> tuple[float, float]:
        left, top, zoom = camera(round((index + generator.uniform(0.2, 0.8)) / count * (frames - 1)))
        view_width, view_height = 1280 / zoom, 720 / zoom
        return (left + generator.uniform(0.1, 0.9) * (view_width - size),
                top + generator.uniform(0.1, 0.9) * (view_height - size))

    moving_faces(people, generator, clip, background(generator, 2560, 1440, (140, 110, 90)), count, (90, 161),
                 (0.0, 0.5), seconds, camera, place)


def enter_leave(people: People, generator: np.random.Generator, path: Path, seconds: float) -> None:
    """640x360, 25 fps: people of 70-120 px walk in from an edge, across and out of the other
    side, at 1-4 px a frame, up to three at once; a pillar in the middle hides them briefly."""
    clip = Clip(path, 640, 360, 25.0, "mp4v")
    scene = background(generator, 640, 360, (130, 120, 100))
    pillar = [300, 0, 44, 360]
    frames = round(seconds * clip.fps)
    walkers: list[list] = []
    next_entry = 0
    for frame in range(frames):
        if frame >= next_entry and len(walkers) < 3:
            size = int(generator.integers(70, 121))
            speed = generator.uniform(1.0, 4.0)
            if generator.random() < 0.7:  # from the left or the right, at some height
                left_side = generator.random() < 0.5
                position = np.array([-size if left_side else 640.0, generator.uniform(0, 360 - size)])
                velocity = np.array([speed if left_side else -speed, generator.uniform(-0.3, 0.3)])
            else:  # from the top or the bottom, away from the pillar
                top_side = generator.random() < 0.5
                x = generator.choice([generator.uniform(0, 300 - size), generator.uniform(344, 640 - size)])
                position = np.array([x, -size if top_side else 360.0])
                velocity = np.array([0.0, speed if top_side else -speed])
            walkers.append([people.next(), size, position, velocity])
            next_entry = frame + int(generator.integers(15, 60))
        image, faces = scene.copy(), []
        for (person, face, emotion), size, position, velocity in walkers:
            position += velocity
            box = paste(image, face_tile(face, size), round(position[0]), round(position[1]))
            faces.append((box, emotion, person))
        walkers = [walker for walker in walkers
                   if -walker[1] - 5 <= walker[2][0] <= 645 and -walker[1] - 5 <= walker[2][1] <= 365]
        image[:, pillar[0]:pillar[0] + pillar[2]] = (70, 80, 90)
        clip.add(image, faces, covers=(pillar,))
    clip.close()


def crowd(people: People, generator: np.random.Generator, path: Path, seconds: float) -> None:
    """1280x720, 25 fps: 18 places of 70-100 px faces swaying a few pixels; every 0.2 s on
    average one place changes: its person leaves, or a new one takes it."""
    clip = Clip(path, 1280, 720, 25.0, "mp4v")
    scene = background(generator, 1280, 720, (110, 100, 120))
    places = [(60 + 200 * column + int(generator.integers(-20, 21)), 40 + 230 * row + int(generator.integers(-15, 16)),
               int(generator.integers(70, 101))) for row in range(3) for column in range(6)]
    current: list[tuple[int, np.ndarray, str] | None] = [people.next() for _ in places]
    phases = generator.uniform(0, 2 * np.pi, len(places))
    for frame in range(round(seconds * clip.fps)):
        if frame and generator.random() < 0.2:
            slot = int(generator.integers(len(places)))
            current[slot] = None if current[slot] is not None and generator.random() < 0.4 else people.next()
        image, faces = scene.copy(), []
        for slot, (x, y, size) in enumerate(places):
            if current[slot] is None:
                continue
            person, face, emotion = current[slot]
            sway = 3 * np.sin(frame / 8 + phases[slot])
            box = paste(image, face_tile(face, size), round(x + sway), round(y + sway / 2))
            faces.append((box, emotion, person))
        clip.add(image, faces)
    clip.close()


# name: (file, builder, seconds); the 640x360 clip is 10 s, the length users replay most.
CLIPS: dict[str, tuple[str, Callable[..., None], float]] = {
    "replaced": ("replaced.mp4", replaced, 8.0),
    "cuts": ("cuts.mp4", cuts, 8.0),
    "small_faces": ("small_faces.avi", small_faces, 8.0),
    "pan_zoom": ("pan_zoom.mp4", pan_zoom, 8.0),
    "enter_leave": ("enter_leave.mp4", enter_leave, 10.0),
    "crowd": ("crowd.mp4", crowd, 8.0),
}


def build_corpus(data: Path, out_dir: Path, seed: int = 11, seconds: float | None = None,
                 only: list[str] | None = None) -> list[Path]:
    """Every clip (or those in ``only``) in ``out_dir``, built unless already there (each of its own
    length, or ``seconds``); their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    faces, labels = load_dataset(data).select("PublicTest")
    paths = []
    for index, (name, (file_name, builder, clip_seconds)) in enumerate(CLIPS.items()):
        if only and name not in only:
            continue
        path = out_dir / file_name
        if not path.exists() or not Path(f"{path}.truth.json").exists():
            generator = np.random.default_rng(seed + index)
            builder(People(faces, labels, generator), generator, path, seconds or clip_seconds)
            LOGGER.info("built %s", path)
        paths.append(path)
    return paths


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fer2013.csv(.gz) with a PublicTest split")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/fakeblock-stress"))
    parser.add_argument("--seconds", type=float, default=None, help="every clip's length (default: its own)")
    parser.add_argument("--only", default="", help="comma list of " + ", ".join(CLIPS))
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build_corpus(arguments.data, arguments.out_dir, seconds=arguments.seconds,
                 only=[name for name in arguments.only.split(",") if name])


if __name__ == "__main__":
    main()

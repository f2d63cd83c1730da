"""Faces per second of an emotion model at a fixed batch size, through the classify runtime.

Uses ``classify.runtime.EmotionModel`` (LiteRT for .tflite), exactly what the classify
stage runs, on real PublicTest faces when ``../shared`` is there (random faces otherwise).

    python benchmarks/classify_throughput.py [--model m.tflite] [--batch-size 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from fakeblock.classify.runtime import EmotionModel

FER_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


def sample_faces(count: int) -> np.ndarray:
    """PublicTest faces when available, else uniform noise faces."""
    if FER_CSV.exists():
        from fakeblock.train.data import load_dataset

        faces, _ = load_dataset(FER_CSV).select("PublicTest")
        return faces[:count]
    return np.random.default_rng(0).integers(0, 256, (count, 48, 48), dtype=np.uint8)


def measure(model: EmotionModel, faces: np.ndarray, batch_size: int, seconds: float) -> float:
    """Faces per second over about ``seconds`` of back-to-back batches."""
    batches = [faces[start:start + batch_size] for start in range(0, len(faces) - batch_size + 1, batch_size)]
    for batch in batches[:3]:
        model.scores(batch)
    done, started_s = 0, time.perf_counter()
    while time.perf_counter() - started_s < seconds:
        for batch in batches:
            model.scores(batch)
            done += len(batch)
    return done / (time.perf_counter() - started_s)


def main() -> None:
    """Print faces/s for each thread count asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=5.0)
    arguments = parser.parse_args()
    faces = sample_faces(1024)
    for threads in arguments.threads:
        model = EmotionModel(arguments.model, threads=threads)
        rate = measure(model, faces, arguments.batch_size, arguments.seconds)
        print(f"{model.path.name}: batch {arguments.batch_size}, {threads} thread(s): {rate:,.0f} faces/s")


if __name__ == "__main__":
    main()

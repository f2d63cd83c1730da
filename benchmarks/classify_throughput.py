"""Faces per second of an emotion model at a fixed batch size, through the classify runtime.

Uses ``classify.runtime.EmotionModel`` (LiteRT for .tflite), exactly what the classify
stage runs, on real PublicTest faces when ``../shared`` is there (random faces otherwise).
With several ``--model``s, the models take turns (``--rounds`` each) and each is also
given as a ratio to the first, the figure that survives a noisy, shared machine.

    python benchmarks/classify_throughput.py [--model m.tflite ...] [--batch-size 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from fakeblock.classify.model_runtime import EmotionModel

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
    """Print faces/s for each model and thread count asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None,
                        help="default: the shipped model; repeat to compare models in one run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=5.0, help="per model and round")
    parser.add_argument("--rounds", type=int, default=1, help="turns each model takes (median is reported)")
    arguments = parser.parse_args()
    faces = sample_faces(1024)
    for threads in arguments.threads:
        models = [EmotionModel(path, threads=threads) for path in arguments.model or [None]]
        rates = [[] for _ in models]
        for _ in range(arguments.rounds):
            for model, model_rates in zip(models, rates, strict=True):
                model_rates.append(measure(model, faces, arguments.batch_size, arguments.seconds))
        medians = [float(np.median(model_rates)) for model_rates in rates]
        for model, rate in zip(models, medians, strict=True):
            ratio = f" ({rate / medians[0]:.2f}x the first)" if len(models) > 1 else ""
            print(f"{model.path}: batch {arguments.batch_size}, {threads} thread(s): {rate:,.0f} faces/s{ratio}")


if __name__ == "__main__":
    main()

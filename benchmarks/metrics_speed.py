"""Time FID, KID and precision/recall with the lenet and inception extractors, in fp32 and bf16.

Prints, for each extractor and precision: seconds to extract features, seconds for each metric, and the
FID itself, so the bf16 - fp32 difference shows whether bf16 extraction is safe to use.

The "generated" set is real mnist5k digits moved by up to two pixels, with a little noise added: a set close
to the real one but not equal to it, and the same in every run. The reference is the mnist5k training
images (5,000 of them; the issue's 10,000 is the generated side).

    .venv/bin/python benchmarks/metrics_speed.py                  # lenet on 10,000, inception on 2,000
    .venv/bin/python benchmarks/metrics_speed.py --skip-inception
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from ganforge.data import DataInfo
from ganforge.metrics.evaluate import build_extractor
from ganforge.metrics.fid import fid_from_features
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.prdc import precision_recall

MNIST = DataInfo("mnist5k", "images", (1, 28, 28), 10)


def sets(n_fake: int, n_real: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (real, generated) image sets in [-1, 1]: mnist5k, and shifted, noisy copies of it."""
    from ganforge.config import DataConfig
    from ganforge.data import load_dataset

    real = load_dataset(DataConfig(name="mnist5k")).x
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(len(real), (n_fake,), generator=generator)
    shifts = torch.randint(-2, 3, (n_fake, 2), generator=generator)
    fake = torch.stack(
        [
            torch.roll(real[i], (int(dy), int(dx)), dims=(1, 2))
            for i, (dy, dx) in zip(picks, shifts, strict=True)
        ]
    )
    fake = (fake + 0.1 * torch.randn(fake.shape, generator=generator)).clamp(-1, 1)
    return real[:n_real], fake


def timed(work):
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def measure(extractor_name: str, precision: str, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    extractor, _ = build_extractor(extractor_name, MNIST, precision, 256, None)  # built (and cached) first
    (real_features, fake_features), extract_s = timed(
        lambda: (extractor.features(real), extractor.features(fake))
    )
    fid, fid_s = timed(lambda: fid_from_features(real_features, fake_features))
    (kid, _), kid_s = timed(lambda: kernel_inception_distance(real_features, fake_features))
    (precision_value, recall), pr_s = timed(lambda: precision_recall(real_features, fake_features))
    return {
        "extract_s": extract_s,
        "fid_s": fid_s,
        "kid_s": kid_s,
        "pr_s": pr_s,
        "fid": fid,
        "kid": kid,
        "total_s": extract_s + fid_s + kid_s + pr_s,
        "precision": precision_value,
        "recall": recall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lenet-n", type=int, default=10_000, help="generated samples for lenet")
    parser.add_argument(
        "--inception-n", type=int, default=2_000, help="generated (and real) samples for inception"
    )
    parser.add_argument("--skip-inception", action="store_true")
    args = parser.parse_args()

    rows = []
    real, fake = sets(args.lenet_n, 5000)
    for precision in ("fp32", "bf16"):
        rows.append(("lenet", precision, len(real), len(fake), measure("lenet", precision, real, fake)))
    if not args.skip_inception:
        real, fake = sets(args.inception_n, args.inception_n)
        for precision in ("fp32", "bf16"):
            rows.append(
                ("inception", precision, len(real), len(fake), measure("inception", precision, real, fake))
            )

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}"
    )
    print()
    columns = [
        "extractor",
        "precision",
        "n_real",
        "n_fake",
        "features s",
        "FID s",
        "KID s",
        "PR s",
        "total s",
        "FID",
        "KID",
        "precision",
        "recall",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, precision, n_real, n_fake, r in rows:
        print(
            f"| {name} | {precision} | {n_real} | {n_fake} | {r['extract_s']:.1f} | {r['fid_s']:.2f} | "
            f"{r['kid_s']:.2f} | {r['pr_s']:.2f} | {r['total_s']:.1f} | {r['fid']:.4f} | {r['kid']:.5f} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} |"
        )
    print()
    for name in ("lenet", "inception"):
        pair = {precision: r for extractor, precision, _, _, r in rows if extractor == name}
        if len(pair) == 2:
            gap = pair["bf16"]["fid"] - pair["fp32"]["fid"]
            print(
                f"{name}: FID bf16 - fp32 = {gap:+.4f} "
                f"({100 * gap / pair['fp32']['fid']:+.2f} % of the fp32 FID); "
                f"bf16 features are {pair['fp32']['extract_s'] / pair['bf16']['extract_s']:.2f}x as fast"
            )


if __name__ == "__main__":
    main()

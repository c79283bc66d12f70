"""Score a CycleGAN run on photo-restyle against the known filter: translate the 250 held-out photo patches
(`restyle_photo_domains("test")`, never in the dataset) with the run's A -> B generator and compare each
translation G_AB(a) with the ideal one, paint(a). Prints a markdown table, next to the baseline of doing
nothing (a itself against paint(a)):

- PSNR (dB): 10 log10(1 / MSE) with pixels taken in [0, 1], per patch, then the mean over patches;
- L1: mean |difference| with pixels in [-1, 1], over every value of every patch;
- levels right: paint's values are -1, 0 or 1 per channel; the share of channel values whose nearest of
  those three levels is paint(a)'s.

Only A -> B is scored: the filter loses colour and detail, so B -> A has no single right answer.
`--picture PATH` writes a PNG grid of test patches in three rows: sources, translations, paint(sources).

    python benchmarks/style_transfer.py RUN [--picture grid.png] [--columns 12]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ganforge.data.restyle_photos import paint, restyle_photo_domains
from ganforge.report.images import image_grid
from ganforge.sampling import to_uint8_images
from ganforge.translation import load_translator

LEVELS = torch.tensor([-1.0, 0.0, 1.0])  # the values paint gives


def psnr(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Return the PSNR in dB (N,) of images (N, C, S, S) against targets, both in [-1, 1], pixels taken in
    [0, 1]; a perfect match counts as 100 dB."""
    mse = ((images - targets) / 2).square().flatten(1).mean(dim=1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def nearest_level(images: torch.Tensor) -> torch.Tensor:
    """Return images (N, C, S, S) with each value replaced by the nearest of LEVELS."""
    return LEVELS[(images[..., None] - LEVELS).abs().argmin(dim=-1)]


def scores(images: torch.Tensor, targets: torch.Tensor) -> tuple[float, float, float]:
    """Return (mean PSNR in dB, mean L1, share of levels right) of images against painted targets."""
    levels_right = (nearest_level(images) == targets).float().mean()
    return psnr(images, targets).mean().item(), (images - targets).abs().mean().item(), levels_right.item()


def write_picture(path: Path, sources: torch.Tensor, translated: torch.Tensor, columns: int) -> None:
    """Write a grid of `columns` test patches spread over the test set: sources, translations, paint."""
    pick = torch.linspace(0, len(sources) - 1, columns).round().long()
    rows = torch.cat([sources[pick], translated[pick], paint(sources[pick])])
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(to_uint8_images(rows), columns=columns, min_cell=64).save(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--picture", type=Path, default=None, help="write a PNG grid here")
    parser.add_argument("--columns", type=int, default=12, help="test patches shown in the picture")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sources, _ = restyle_photo_domains("test")  # (250, 3, 32, 32) photo patches, held out
    targets = paint(sources)
    forward = load_translator(args.run)
    translated = forward.translate(sources)
    print(f"run {args.run}, step {forward.sampler.step}; held-out photo patches: {len(sources)}")
    print("| A -> B, against paint(a) | PSNR (dB) | L1 | levels right |")
    print("|---|---|---|---|")
    for name, images in (("do nothing: a", sources), ("CycleGAN: G_AB(a)", translated)):
        mean_psnr, l1, levels_right = scores(images, targets)
        print(f"| {name} | {mean_psnr:.2f} | {l1:.3f} | {levels_right:.1%} |")
    if args.picture is not None:
        write_picture(args.picture, sources, translated, args.columns)
        print(f"picture: {args.picture} (rows: sources, translations, paint(sources))")


if __name__ == "__main__":
    main()

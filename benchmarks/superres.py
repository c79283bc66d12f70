"""Score super-resolution runs on the held-out photos of sr-photos (chelsea, coffee, camera: never cut into
training patches) against bicubic upscaling: PSNR and SSIM on Y (BT.601 luma) and on RGB, `scale` pixels
cut at every border (metrics/superres.py). Prints a markdown table; `--crops PNG` writes a picture of crops
side by side: bicubic, each run, the original.

    python benchmarks/superres.py RUN [RUN ...] [--names srresnet srgan] [--crops docs/images/superres.png]

The protocol of docs/image2image.md (SRResNet, then SRGAN started from it):

    ganforge train --preset srgan-photos --set recipe.options.pretrain_steps=2000 --set training.steps=2000 \
        --out runs/srresnet
    ganforge train --preset srgan-photos --set recipe.options.pretrain_steps=0 --set training.steps=1000 \
        --set optim.generator.lr=0.0001 --set optim.generator.schedule=constant \
        --set training.init_from=runs/srresnet --out runs/srgan
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from ganforge.data.superres import HELDOUT_PHOTOS, heldout_photos
from ganforge.nets.srresnet import bicubic_downscale, bicubic_upscale
from ganforge.sampling import to_uint8_images
from ganforge.superres import held_out_scores, load_superresolver

CROP = 96  # side of each crop in the picture, in output pixels
CROP_CORNERS = ((120, 150), (120, 220), (180, 200))  # (top, left) of one crop per held-out photo


def crops_picture(resolvers: list, photos: list[torch.Tensor], scale: int) -> Image.Image:
    """Return one row per photo: crops of bicubic, each resolver's output and the original, side by side."""
    rows = []
    for photo, (top, left) in zip(photos, CROP_CORNERS, strict=True):
        height, width = photo.shape[-2:]
        reference = photo[:, : height - height % scale, : width - width % scale]
        small = bicubic_downscale(reference[None], scale).clamp(-1, 1)
        versions = [bicubic_upscale(small, scale).clamp(-1, 1)[0]]
        versions += [resolver.upscale(small)[0] for resolver in resolvers]
        versions.append(reference)
        crops = [v[:, top : top + CROP, left : left + CROP] for v in versions]
        rows.append(torch.cat([torch.cat([c, torch.ones(3, CROP, 4)], dim=2) for c in crops], dim=2))
    picture = torch.cat([torch.cat([row, torch.ones(3, 4, row.shape[2])], dim=1) for row in rows], dim=1)
    return Image.fromarray(to_uint8_images(picture[None])[0].transpose(1, 2, 0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", help="srgan run folders (or their generator.safetensors)")
    parser.add_argument("--names", nargs="*", help="a name per run for the table (default: the folder names)")
    parser.add_argument("--crops", type=Path, help="write a picture of crops side by side here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.names or [Path(run).name for run in args.runs]
    if len(names) != len(args.runs):
        raise SystemExit("--names: give one name per run")
    resolvers = [load_superresolver(run) for run in args.runs]
    scales = {resolver.scale for resolver in resolvers}
    if len(scales) != 1:
        raise SystemExit(f"the runs upscale by different factors: {sorted(scales)}")
    scale = scales.pop()
    photos = heldout_photos()
    print(f"x{scale} on {len(photos)} held-out photos ({', '.join(HELDOUT_PHOTOS)}); border {scale} px cut")
    print("| method | step | PSNR Y (dB) | SSIM Y | PSNR RGB (dB) | SSIM RGB |")
    print("|---|---|---|---|---|---|")
    rows = [("bicubic", "-", held_out_scores(None, photos, scale))]
    rows += [
        (name, str(resolver.sampler.step), held_out_scores(resolver, photos, scale))
        for name, resolver in zip(names, resolvers, strict=True)
    ]
    for name, step, scores in rows:
        print(
            f"| {name} | {step} | {scores['psnr_y']:.2f} | {scores['ssim_y']:.4f} "
            f"| {scores['psnr_rgb']:.2f} | {scores['ssim_rgb']:.4f} |"
        )
    if args.crops:
        args.crops.parent.mkdir(parents=True, exist_ok=True)
        crops_picture(resolvers, photos, scale).save(args.crops)
        print(f"crops (bicubic, {', '.join(names)}, original) written to {args.crops}")


if __name__ == "__main__":
    main()

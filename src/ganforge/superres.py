"""Using a trained super-resolution generator (SRGAN, SRResNet): upscale tensors or image files of any size.

Needs nothing from the training code: the generator is read from the run's `generator.safetensors` by
`load_generator` and run in eval mode (batch norm with its running statistics), so each output pixel depends
only on the input pixels around it.

Tiling: a large image is cut into tiles of `tile` x `tile` input pixels; each is upscaled together with a
margin of `net.context` input pixels on every side where the image goes on (the generator's receptive
radius), and only its own part of the output is kept. An output pixel then sees exactly the input it would
see in the whole image, so the tiles meet without seams and the result equals whole-image inference (to
float rounding), while memory stays bounded by one tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganforge.errors import UserError
from ganforge.metrics.superres import score
from ganforge.nets.srresnet import SRResNetGenerator, bicubic_downscale, bicubic_upscale
from ganforge.sampling import Sampler, load_generator, to_uint8_images

DEFAULT_TILE = 128  # input pixels per tile side


@dataclass
class SuperResolver:
    """A trained super-resolution generator: `upscale(images)` gives images `scale` times larger."""

    sampler: Sampler  # the loaded generator file (its `net` is the SRResNet)

    def __post_init__(self) -> None:
        if not isinstance(self.sampler.net, SRResNetGenerator):
            raise UserError(
                f"MODEL: this generator ({type(self.sampler.net).__name__}) is not a super-resolution one; "
                "superres needs a run of recipe srgan"
            )

    @property
    def scale(self) -> int:
        return self.sampler.net.scale

    @property
    def channels(self) -> int:
        return self.sampler.net.source_shape[0]

    @torch.inference_mode()
    def upscale(self, images: torch.Tensor, tile: int | None = DEFAULT_TILE) -> torch.Tensor:
        """Return images (N, C, h, w) in [-1, 1] upscaled to (N, C, scale*h, scale*w), on the CPU, clamped to
        [-1, 1]; tiled when `tile` is given and the image is larger (module docstring)."""
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise UserError(f"images must be (N, {self.channels}, H, W), got shape {tuple(images.shape)}")
        if tile is not None and tile < 1:
            raise UserError(f"--tile must be at least 1, got {tile}")
        net, scale = self.sampler.net, self.scale
        device = next(net.parameters()).device
        was_training = net.training
        net.eval()
        try:
            height, width = images.shape[-2:]
            if tile is None or (height <= tile and width <= tile):
                return net(images.float().to(device)).float().cpu().clamp(-1, 1)
            out = torch.empty(len(images), self.channels, scale * height, scale * width)
            margin = net.context
            for top in range(0, height, tile):
                for left in range(0, width, tile):
                    # the tile, with up to `margin` pixels more on each side the image goes on
                    top_m, left_m = max(0, top - margin), max(0, left - margin)
                    bottom, right = min(height, top + tile), min(width, left + tile)
                    piece = images[
                        ..., top_m : min(height, bottom + margin), left_m : min(width, right + margin)
                    ]
                    upscaled = net(piece.float().to(device)).float().cpu()
                    rows = slice(scale * (top - top_m), scale * (bottom - top_m))
                    columns = slice(scale * (left - left_m), scale * (right - left_m))
                    out[..., scale * top : scale * bottom, scale * left : scale * right] = upscaled[
                        ..., rows, columns
                    ]
            return out.clamp(-1, 1)
        finally:
            net.train(was_training)


def load_superresolver(run: str | Path, device: str = "cpu") -> SuperResolver:
    """Return a SuperResolver for an srgan run folder (or its generator.safetensors)."""
    return SuperResolver(load_generator(run, device=device))


def upscale_file(
    run: str | Path,
    in_path: str | Path,
    out_path: str | Path,
    scale: int,
    tile: int | None = DEFAULT_TILE,
    device: str = "cpu",
) -> tuple[int, int]:
    """Upscale the image file `in_path` by `scale` (which must be the model's) and write it to `out_path`
    (PNG unless its suffix says otherwise); return the output's (width, height)."""
    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.exists() and in_path.exists() and out_path.resolve() == in_path.resolve():
        raise UserError("OUT: is IN; the upscaled image would overwrite the input")
    resolver = load_superresolver(run, device)
    if scale != resolver.scale:
        raise UserError(
            f"--scale: the model was trained for x{resolver.scale}, not x{scale}; "
            f"use --scale {resolver.scale} or a model trained with recipe.options.scale={scale}"
        )
    try:
        with Image.open(in_path) as image:
            mode = "L" if resolver.channels == 1 else "RGB"
            pixels = np.asarray(image.convert(mode))
    except FileNotFoundError:
        raise UserError(f"IN: {str(in_path)!r} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"IN: cannot read image {str(in_path)!r} ({exc.__class__.__name__})") from None
    array = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    source = torch.from_numpy(np.ascontiguousarray(array))[None].float() / 127.5 - 1
    upscaled = to_uint8_images(resolver.upscale(source, tile))[0]
    picture = upscaled[0] if upscaled.shape[0] == 1 else upscaled.transpose(1, 2, 0)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(out_path)
    except (OSError, ValueError) as exc:
        raise UserError(f"OUT: cannot write {str(out_path)!r} ({exc})") from None
    return picture.shape[1], picture.shape[0]


def held_out_scores(
    resolver: SuperResolver | None, photos: list[torch.Tensor], scale: int, tile: int | None = DEFAULT_TILE
) -> dict[str, float]:
    """Return PSNR and SSIM (Y and RGB, metrics.superres) of upscaling each photo's shrunk copy back to its
    size: with `resolver`, or bicubic when it is None. Photos (C, H, W) in [-1, 1] are first cut to a
    multiple of `scale`; `scale` pixels are left out of the scores at every border."""
    pairs = []
    for photo in photos:
        height, width = photo.shape[-2:]
        reference = photo[:, : height - height % scale, : width - width % scale]
        small = bicubic_downscale(reference[None], scale).clamp(-1, 1)
        if resolver is None:
            upscaled = bicubic_upscale(small, scale).clamp(-1, 1)
        else:
            upscaled = resolver.upscale(small, tile)
        pairs.append((upscaled[0], reference))
    return score(pairs, border=scale)

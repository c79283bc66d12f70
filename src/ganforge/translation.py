"""Using a trained image-to-image generator (pix2pix, CycleGAN): translate tensors, or a folder of images.

Needs nothing from the training code: the generator is read from the run's `generator.safetensors` by
`load_generator`, like any other, and run in eval mode (batch norm with its running statistics, no
dropout), so an image's translation does not depend on the other images of its batch.

Directions: AtoB is `generator.safetensors` (every image-to-image run has it); BtoA is
`generator_BtoA.safetensors`, which only runs that learn both directions (CycleGAN) write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganforge.data.cache import IMAGE_SUFFIXES
from ganforge.errors import UserError
from ganforge.nets import translates
from ganforge.sampling import Sampler, load_generator, to_uint8_images

DIRECTIONS = ("AtoB", "BtoA")
REVERSE_GENERATOR_FILE = "generator_BtoA.safetensors"  # a CycleGAN run's B-to-A generator
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclass
class Translator:
    """A trained image-to-image generator: `translate(source)` gives its target images."""

    sampler: Sampler  # the loaded generator file (its `net` is the U-Net)

    def __post_init__(self) -> None:
        if not translates(self.sampler.net):
            raise UserError(
                f"this generator ({type(self.sampler.net).__name__}) samples from noise; "
                "translate needs an image-to-image run (recipe pix2pix or cyclegan)"
            )

    @property
    def source_shape(self) -> tuple[int, int, int]:
        return tuple(self.sampler.net.source_shape)

    @property
    def target_shape(self) -> tuple[int, int, int]:
        return tuple(self.sampler.net.data_shape)

    @torch.inference_mode()
    def translate(self, source: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Return the translations (N, Ct, S, S) in [-1, 1], on the CPU, of sources (N, Cs, S, S)."""
        if tuple(source.shape[1:]) != self.source_shape:
            raise UserError(
                f"source images must have shape {self.source_shape}, got {tuple(source.shape[1:])}"
            )
        net = self.sampler.net
        device = next(net.parameters()).device
        was_training = net.training
        net.eval()
        try:
            parts = [net(part.float().to(device)).float().cpu() for part in source.split(batch_size)]
        finally:
            net.train(was_training)
        return torch.cat(parts)


def load_translator(run: str | Path, device: str = "cpu", direction: str = "AtoB") -> Translator:
    """Return a Translator for the generator of an image-to-image run folder (or its generator.safetensors)
    that translates in `direction`: "AtoB", or "BtoA" (CycleGAN runs only)."""
    if direction not in DIRECTIONS:
        raise UserError(f"--direction: must be AtoB or BtoA, got {direction!r}")
    if direction == "AtoB":
        return Translator(load_generator(run, device=device))
    path = Path(run)
    folder = path if path.is_dir() else path.parent
    reverse = folder / REVERSE_GENERATOR_FILE
    if reverse.is_file():
        return Translator(load_generator(reverse, device=device))
    forward = Translator(load_generator(run, device=device))  # no generator at all: that error first
    raise UserError(
        f"--direction: BtoA needs a run that learns both directions (recipe cyclegan), but {str(run)!r} has "
        f"no {REVERSE_GENERATOR_FILE}; its {type(forward.sampler.net).__name__} translates A into B only "
        "(for pix2pix, train on the folders swapped to go from B to A)"
    )


def translate_folder(
    run: str | Path,
    in_dir: str | Path,
    out_dir: str | Path,
    direction: str = "AtoB",
    batch_size: int = 64,
    device: str = "cpu",
) -> list[Path]:
    """Translate every image file directly in `in_dir` and write PNGs of the same names to `out_dir`.

    Returns the written paths, in the sorted order of the inputs. Each input must have the generator's
    source size and channels (grey for 1 channel, colour for 3); nothing is written if one does not.
    """
    if direction not in DIRECTIONS:
        raise UserError(f"--direction: must be AtoB or BtoA, got {direction!r}")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise UserError(f"IN_DIR: {str(in_dir)!r} does not exist or is not a folder")
    if out_dir.exists() and out_dir.resolve() == in_dir.resolve():
        raise UserError("OUT_DIR: is IN_DIR; the translations would overwrite the inputs")
    files = sorted(p for p in in_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"IN_DIR: {str(in_dir)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    names: dict[str, Path] = {}
    for path in files:
        other = names.setdefault(path.stem + ".png", path)
        if other != path:
            raise UserError(f"IN_DIR: {other.name} and {path.name} would both be written as {path.stem}.png")
    translator = load_translator(run, device, direction)
    source = torch.from_numpy(np.stack([_read(path, translator.source_shape) for path in files]))
    translated = to_uint8_images(translator.translate(source.float() / 127.5 - 1, batch_size))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name, image in zip(names, translated, strict=True):
            pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
            Image.fromarray(pixels).save(out_dir / name)
            written.append(out_dir / name)
    except OSError as exc:
        raise UserError(f"OUT_DIR: cannot write to {str(out_dir)!r} ({exc.strerror or exc})") from None
    return written


def _read(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """Return the image at `path` as uint8 (C, S, S), checked against the generator's source `shape`."""
    channels, side, _ = shape
    try:
        with Image.open(path) as image:
            found = 1 if image.mode in GREY_MODES else 3
            if found != channels:
                kind = {1: "grey (1 channel)", 3: "colour (3 channels)"}
                raise UserError(
                    f"IN_DIR: {path.name} is {kind[found]}, but the generator translates "
                    f"{kind.get(channels, f'{channels}-channel')} images"
                )
            if image.size != (side, side):
                raise UserError(
                    f"IN_DIR: {path.name} is {image.width}x{image.height}, but the generator translates "
                    f"{side}x{side} images"
                )
            pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"IN_DIR: cannot read image {path.name} ({exc.__class__.__name__})") from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

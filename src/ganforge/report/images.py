"""Image grids and scatter plots written with Pillow and matplotlib (no torchvision)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ganforge.errors import UserError
from ganforge.report.arrays import samples_array, write_npz

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def image_grid(
    images: np.ndarray, columns: int | None = None, padding: int = 2, min_cell: int = 32
) -> Image.Image:
    """Return one picture of uint8 images (N, C, H, W) in rows; small images are enlarged (nearest)."""
    count, channels, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    scale = max(1, math.ceil(min_cell / max(height, width)))
    cell_h, cell_w = height * scale, width * scale
    canvas = np.full(
        (rows * (cell_h + padding) + padding, columns * (cell_w + padding) + padding, channels),
        255,
        dtype=np.uint8,
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        tile = image.transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1)
        top, left = padding + row * (cell_h + padding), padding + column * (cell_w + padding)
        canvas[top : top + cell_h, left : left + cell_w] = tile
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas)


def scatter_figure(
    points: np.ndarray,
    reference: np.ndarray | None = None,
    centres: np.ndarray | None = None,
    title: str = "",
    size: float = 5.0,
) -> Figure:
    """Return a figure of 2-D points in red over optional real points (grey) and mode centres (crosses)."""
    from matplotlib.figure import Figure  # no pyplot: no global figure registry, no backend switch

    figure = Figure(figsize=(size, size), dpi=100)
    axes = figure.add_subplot()
    if reference is not None:
        axes.scatter(reference[:, 0], reference[:, 1], s=2, c="#bbbbbb", label="real")
    axes.scatter(points[:, 0], points[:, 1], s=2, c="#d62728", label="generated")
    if centres is not None:
        axes.scatter(
            centres[:, 0], centres[:, 1], s=60, marker="x", c="black", linewidths=1.5, label="mode centres"
        )
    axes.set_aspect("equal", adjustable="datalim")  # equal scales; the box still fills the figure
    axes.set_title(title)
    legend = axes.legend(loc="upper right")
    for handle in legend.legend_handles:  # legend markers big enough to see, whatever the plot's sizes
        handle.set_sizes([30])
    figure.tight_layout()
    return figure


def scatter_plot(
    points: np.ndarray, path: Path, reference: np.ndarray | None = None, title: str = ""
) -> None:
    """Write a scatter plot of 2-D points (and optionally real points behind them) to `path`."""
    scatter_figure(points, reference, title=title).savefig(path)


def png_bytes(picture: Image.Image | Figure, dpi: float | None = None) -> bytes:
    """Return a PIL image or a matplotlib figure encoded as PNG."""
    buffer = io.BytesIO()
    if isinstance(picture, Image.Image):
        picture.save(buffer, format="PNG", optimize=True)
    else:
        picture.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_samples(samples: torch.Tensor, kind: str, path: Path, columns: int | None = None) -> Path:
    """Write samples to a .png (grid of images, or scatter of 2-D points) or an .npz (array `x`).

    `columns` sets the images per row of a grid (default: a square grid).
    """
    from ganforge.sampling import to_uint8_images

    suffix = path.suffix.lower()
    if suffix not in (".png", ".npz"):
        raise UserError(f"--out: {str(path)!r} must end in .png or .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npz":
        array = samples_array(samples, kind)
        write_npz(path, [array], array.shape, array.dtype)
    elif kind == "images":
        image_grid(to_uint8_images(samples), columns=columns).save(path)
    elif samples.shape[1:] == (2,):
        scatter_plot(samples.numpy(), path)
    else:
        raise UserError(f"--out: samples of shape {tuple(samples.shape[1:])} cannot be drawn; use .npz")
    return path

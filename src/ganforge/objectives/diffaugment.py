"""DiffAugment (Zhao et al. 2020): differentiable augmentations for training GANs on little data.

The same random augmentation family is applied to real *and* generated images before D sees them, in both
D's and G's steps. Because every operation is differentiable in the pixels, G's gradient passes through
the augmentation, and D cannot overfit the few real images without G seeing augmented fakes too.

Images are (N, C, H, W) in [-1, 1]. Random numbers come from torch's global generator on the images' device,
so `torch.manual_seed` makes runs repeat. The parameters (ranges, translation ratio 1/8, cutout ratio 1/2,
cutout centre anywhere in the image) follow the authors' published code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")  # applied in this order, whichever a policy lists


def diff_augment(x: torch.Tensor, policy: Sequence[str] | str) -> torch.Tensor:
    """Return x augmented by each augmentation named in `policy`, differentiably and per sample.

    Args:
        x: images (N, C, H, W).
        policy: names from POLICIES, e.g. ("color", "translation", "cutout"), or one comma-separated string
            ("color,translation,cutout", the authors' spelling). Empty means no augmentation.
    """
    names = [p.strip() for p in policy.split(",") if p.strip()] if isinstance(policy, str) else list(policy)
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown DiffAugment policy {', '.join(map(repr, unknown))} (known: {', '.join(POLICIES)})"
        )
    if not names:
        return x
    if x.ndim != 4:
        raise ValueError(f"DiffAugment expects images (N, C, H, W), got shape {tuple(x.shape)}")
    if "color" in names:
        x = _color(x)
    if "translation" in names:
        x = _translation(x)
    if "cutout" in names:
        x = _cutout(x)
    return x


def _per_sample_uniform(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Return U[low, high) numbers of shape (N, 1, 1, 1), one per image."""
    return low + (high - low) * torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)


def _color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness, saturation (colour images only) and contrast, each drawn per image."""
    x = x + _per_sample_uniform(x, -0.5, 0.5)  # brightness
    if x.shape[1] == 3:  # saturation: scale each pixel's distance from its grey value
        grey = x.mean(dim=1, keepdim=True)  # (N, 1, H, W)
        x = (x - grey) * _per_sample_uniform(x, 0.0, 2.0) + grey
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
    return (x - mean) * _per_sample_uniform(x, 0.5, 1.5) + mean  # contrast


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a random whole number of pixels up to `ratio` of its size, filling with zeros."""
    n, _, height, width = x.shape
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1), device=x.device)  # (N, 1)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1), device=x.device)
    # Output pixel (i, j) reads input pixel (i + dy, j + dx); reads from outside the image land on the
    # one-pixel zero border of the padded image (index 0 or size + 1 after the clamp).
    rows = (torch.arange(height, device=x.device) + dy + 1).clamp(0, height + 1)  # (N, H)
    cols = (torch.arange(width, device=x.device) + dx + 1).clamp(0, width + 1)  # (N, W)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (N, H+2, W+2, C)
    batch = torch.arange(n, device=x.device)[:, None, None]  # (N, 1, 1)
    shifted = padded[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return shifted.permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of side `ratio` * size whose centre is uniform over the image (clipped at the border)."""
    n, _, height, width = x.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    # As in the authors' code: centres in [0, size] for even sides, [0, size - 1] for odd ones, so the square
    # is clipped by the same amount at either border.
    centre_y = torch.randint(0, height + (1 - size_y % 2), (n, 1), device=x.device)  # (N, 1)
    centre_x = torch.randint(0, width + (1 - size_x % 2), (n, 1), device=x.device)
    top, left = centre_y - size_y // 2, centre_x - size_x // 2
    rows = torch.arange(height, device=x.device)  # (H,)
    cols = torch.arange(width, device=x.device)
    inside_rows = (rows >= top) & (rows < top + size_y)  # (N, H)
    inside_cols = (cols >= left) & (cols < left + size_x)  # (N, W)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])  # (N, H, W)
    return x * keep[:, None].to(x.dtype)

"""Two-dimensional Gaussian mixtures used to study mode collapse (VEEGAN / PacGAN / GDPP protocol)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.data.base import DATASETS, TensorData, labelled


def ring8_modes() -> np.ndarray:
    """Return the 8 centres evenly spaced on the unit circle, shape (8, 2)."""
    angles = 2 * math.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid25_modes() -> np.ndarray:
    """Return the 25 centres of the grid {-4, -2, 0, 2, 4}^2, shape (25, 2)."""
    axis = np.arange(-4, 5, 2, dtype=np.float64)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)


MIXTURES = {  # name -> (mode centres, standard deviation of each Gaussian)
    "ring8": (ring8_modes(), 0.01),
    "grid25": (grid25_modes(), 0.05),
}


def _mixture(name: str, config: DataConfig) -> TensorData:
    centres, sigma = MIXTURES[name]
    rng = np.random.default_rng(config.seed)
    mode = rng.integers(len(centres), size=config.num_samples)
    points = centres[mode] + sigma * rng.standard_normal((config.num_samples, 2))
    # Every mode is a class, even one that a small num_samples happened not to draw.
    return labelled(
        torch.from_numpy(points), torch.from_numpy(mode), name, "points", num_classes=len(centres)
    )


@DATASETS.register("ring8", "8 Gaussians on the unit circle, sigma 0.01 (points, labelled by mode)")
def ring8(_: str, config: DataConfig) -> TensorData:
    return _mixture("ring8", config)


@DATASETS.register(
    "grid25", "25 Gaussians on the grid {-4,-2,0,2,4}^2, sigma 0.05 (points, labelled by mode)"
)
def grid25(_: str, config: DataConfig) -> TensorData:
    return _mixture("grid25", config)

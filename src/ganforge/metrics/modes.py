"""Mode coverage on Gaussian mixtures, after the protocol of VEEGAN (Srivastava et al. 2017) and PacGAN
(Lin et al. 2018): each sample goes to its nearest mode; it is "high quality" when it lies within
3 standard deviations of that mode; a mode counts as covered when it holds at least `min_count` high-quality
samples. Reverse KL compares the histogram of high-quality samples over modes with the uniform one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModeCoverage:
    modes_covered: int  # modes with at least min_count high-quality samples
    high_quality: float  # fraction of samples within 3 sigma of their nearest mode
    reverse_kl: float  # KL(sample histogram || uniform) over modes, from high-quality samples
    counts: tuple[int, ...]  # high-quality samples per mode


def mode_coverage(
    samples: np.ndarray, centres: np.ndarray, sigma: float, min_count: int = 20
) -> ModeCoverage:
    """Return mode statistics of `samples` (N, D) against mixture `centres` (K, D) of std `sigma`."""
    distances = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=-1)  # (N, K)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] <= 3 * sigma
    counts = np.bincount(nearest[good], minlength=len(centres))
    if counts.sum():
        p = counts / counts.sum()
        nonzero = p > 0
        reverse_kl = float(np.sum(p[nonzero] * np.log(p[nonzero] * len(centres))))
    else:
        reverse_kl = float("inf")
    return ModeCoverage(
        int((counts >= min_count).sum()), float(good.mean()), reverse_kl, tuple(int(c) for c in counts)
    )


def stacked_mode_coverage(digits: np.ndarray, num_modes: int = 1000) -> tuple[int, float]:
    """Return (modes covered, KL(histogram || uniform)) for stacked digits read as (N, 3) class labels.

    A sample's mode is 100 * first + 10 * second + third digit; a mode is covered by one sample or more
    (the stacked-MNIST protocol of Metz et al. 2017, used by VEEGAN and PacGAN).
    """
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    counts = np.bincount(modes, minlength=num_modes)
    p = counts / counts.sum()
    nonzero = p > 0
    return int(nonzero.sum()), float(np.sum(p[nonzero] * np.log(p[nonzero] * num_modes)))

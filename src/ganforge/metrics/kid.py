"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimator of the
squared maximum mean discrepancy with the cubic polynomial kernel k(x, y) = (x·y / d + 1)^3, averaged over
random subsets. Unlike FID it has an unbiased estimator, so it can be compared across sample sizes, and a
value near 0 (possibly slightly negative) means the two sets are indistinguishable to the kernel.
"""

from __future__ import annotations

import numpy as np

from ganforge.errors import UserError
from ganforge.metrics.fid import as_features, check_same_dims


def _polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the (len(a), len(b)) matrix of k(a_i, b_j) = (a_i·b_j / d + 1)^3."""
    base = a @ b.T
    base /= a.shape[1]
    base += 1.0
    # Two in-place products instead of `** 3`: numpy's float power took 90 ms on 1000 x 1000 against 1 ms.
    cubed = base * base
    cubed *= base
    return cubed


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Return the unbiased MMD² estimate between samples `x` (m, d) and `y` (n, d) under the cubic kernel.

    The within-set means leave out the diagonal k(x_i, x_i), which is what removes the bias (Gretton et al.
    2012, "A Kernel Two-Sample Test", Lemma 6); m and n may differ.
    """
    x = as_features(x, "x", min_samples=2)
    y = as_features(y, "y", min_samples=2)
    check_same_dims(x=x, y=y)
    m, n = len(x), len(y)
    k_xx = _polynomial_kernel(x, x)
    k_yy = _polynomial_kernel(y, y)
    k_xy = _polynomial_kernel(x, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_inception_distance(
    real: np.ndarray,
    fake: np.ndarray,
    subsets: int = 100,  # random subsets averaged over (100 x 1,000 are torch-fidelity's defaults)
    subset_size: int = 1000,  # samples per set in each subset; capped at the smaller set's size
    seed: int = 0,  # seeds np.random.default_rng; the same seed gives the same subsets
) -> tuple[float, float]:
    """Return the mean and standard deviation of the unbiased MMD² over `subsets` random subsets.

    Each subset draws `subset_size` rows from `real` (N, d) and from `fake` (M, d) without replacement; rows
    may recur across subsets. The standard deviation (ddof=0) describes the spread over subsets, not the error
    of the mean.
    """
    real = as_features(real, "real", min_samples=2)
    fake = as_features(fake, "fake", min_samples=2)
    check_same_dims(real=real, fake=fake)
    if subsets < 1:
        raise UserError(f"KID needs at least 1 subset; got subsets={subsets}")
    if subset_size < 2:
        raise UserError(f"KID needs subsets of at least 2 samples; got subset_size={subset_size}")
    size = min(subset_size, len(real), len(fake))
    rng = np.random.default_rng(seed)
    estimates = np.empty(subsets)
    for index in range(subsets):
        real_rows = rng.choice(len(real), size=size, replace=False)
        fake_rows = rng.choice(len(fake), size=size, replace=False)
        estimates[index] = mmd2_unbiased(real[real_rows], fake[fake_rows])
    return float(estimates.mean()), float(estimates.std())

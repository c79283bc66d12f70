"""k-nearest-neighbour manifold metrics on feature sets.

Each point gets a ball whose radius is the distance to its k-th nearest other point of its own set; the union
of a set's balls estimates its manifold.

- Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
  Generative Models"): precision is the fraction of fake points inside the real manifold, recall the fraction
  of real points inside the fake manifold. Their definition and reference code use closed balls (<=).
- Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models"):
  density counts how many real balls hold each fake point, divided by k, so it is about 1 when the two sets
  come from one distribution and can exceed 1; coverage is the fraction of real balls that hold at least one
  fake point. Their reference code uses open balls (<), which is why a set compared with itself has density
  exactly 1 when no distances tie: each ball holds its own centre and the k - 1 nearer neighbours, not the
  k-th neighbour on its rim.

Distances are float64 Euclidean, computed `chunk_rows` query rows at a time so that 10,000 x 10,000 features
never need an 800 MB matrix at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ganforge.errors import UserError
from ganforge.metrics.fid import as_features, check_same_dims

CHUNK_ROWS = 2048  # query rows per distance block: 2,048 x 10,000 float64 is 160 MB


def pairwise_distance_blocks(
    queries: np.ndarray, reference: np.ndarray, chunk_rows: int = CHUNK_ROWS
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row, Euclidean distances (rows, len(reference))) for consecutive row blocks of `queries`.

    Uses ||a||² + ||b||² - 2 a·b, one matrix product per block; squared distances that rounding makes
    slightly negative are clipped to 0 before the square root.
    """
    if chunk_rows < 1:
        raise UserError(f"chunk_rows must be at least 1; got {chunk_rows}")
    reference_sq = np.einsum("ij,ij->i", reference, reference)  # (R,)
    for start in range(0, len(queries), chunk_rows):
        chunk = queries[start : start + chunk_rows]  # (c, d)
        block = chunk @ reference.T  # (c, R); built in place below to hold one (c, R) array only
        block *= -2.0
        block += np.einsum("ij,ij->i", chunk, chunk)[:, None]
        block += reference_sq[None, :]
        np.maximum(block, 0.0, out=block)
        yield start, np.sqrt(block, out=block)


def kth_neighbour_radii(features: np.ndarray, k: int, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Return (N,) distances from each row of `features` (N, d) to its k-th nearest other row (N > k)."""
    radii = np.empty(len(features))
    for start, block in pairwise_distance_blocks(features, features, chunk_rows):
        rows = np.arange(len(block))
        block[rows, start + rows] = -np.inf  # a point is not its own neighbour: sort it first, then skip it
        radii[start : start + len(block)] = np.partition(block, k, axis=1)[:, k]
    return radii


def _validated_pair(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return `real` and `fake` as float64 arrays, each with more than k rows and the same width."""
    if k < 1:
        raise UserError(f"k must be at least 1; got k={k}")
    real = as_features(real, "real", min_samples=k + 1)
    fake = as_features(fake, "fake", min_samples=k + 1)
    check_same_dims(real=real, fake=fake)
    return real, fake


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, *, chunk_rows: int = CHUNK_ROWS
) -> tuple[float, float]:
    """Return improved (precision, recall) of `fake` (M, d) against `real` (N, d) with k-NN radii.

    Precision: fraction of fake points within the k-NN radius of at least one real point. Recall: fraction
    of real points within the k-NN radius (among fakes) of at least one fake point. k = 3 is the paper's
    default. Both sets need more than k points.
    """
    real, fake = _validated_pair(real, fake, k)
    real_radii = kth_neighbour_radii(real, k, chunk_rows)  # (N,)
    fake_radii = kth_neighbour_radii(fake, k, chunk_rows)  # (M,)
    fake_in_real = np.zeros(len(fake), dtype=bool)
    real_in_fake = np.zeros(len(real), dtype=bool)
    for start, block in pairwise_distance_blocks(
        fake, real, chunk_rows
    ):  # block (c, N): fake rows, real cols
        stop = start + len(block)
        fake_in_real[start:stop] = (block <= real_radii[None, :]).any(axis=1)
        real_in_fake |= (block <= fake_radii[start:stop, None]).any(axis=0)
    return float(fake_in_real.mean()), float(real_in_fake.mean())


def density_coverage(
    real: np.ndarray, fake: np.ndarray, k: int = 5, *, chunk_rows: int = CHUNK_ROWS
) -> tuple[float, float]:
    """Return (density, coverage) of `fake` (M, d) against `real` (N, d) with k-NN radii of the real points.

    Density = (1 / (k M)) * sum over fake j and real i of 1[dist(fake_j, real_i) < radius_i]. Coverage =
    fraction of real points i with some fake j at dist < radius_i. k = 5 is the paper's recommendation. Both
    sets need more than k points.
    """
    real, fake = _validated_pair(real, fake, k)
    real_radii = kth_neighbour_radii(real, k, chunk_rows)  # (N,)
    inside_count = 0
    real_covered = np.zeros(len(real), dtype=bool)
    for _, block in pairwise_distance_blocks(fake, real, chunk_rows):  # block (c, N)
        inside = block < real_radii[None, :]
        inside_count += int(inside.sum())
        real_covered |= inside.any(axis=0)
    return inside_count / (k * len(fake)), float(real_covered.mean())

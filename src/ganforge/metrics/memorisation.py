"""Does the generator copy its training set? Compare how close generated samples come to the training set
with how close unseen real samples (a held-out split) come to it. A generator that samples the data
distribution sits as far from the training set as held-out data does (ratio about 1); one that memorises sits
closer (ratio well below 1, and many samples nearer than almost any held-out sample).
"""

from __future__ import annotations

import logging

import numpy as np

from ganforge.metrics.fid import as_features, check_same_dims
from ganforge.metrics.prdc import CHUNK_ROWS, pairwise_distance_blocks

logger = logging.getLogger(__name__)

COPY_PERCENTILE = (
    1.0  # a fake sample counts as copied when no farther from train than this percentile of held-out
)


def nearest_neighbour_distances(
    queries: np.ndarray, reference: np.ndarray, *, chunk_rows: int = CHUNK_ROWS
) -> np.ndarray:
    """Return (Q,) Euclidean distances from each row of `queries` (Q, d) to its nearest row of `reference`."""
    queries = as_features(queries, "query", min_samples=1)
    reference = as_features(reference, "reference", min_samples=1)
    check_same_dims(queries=queries, reference=reference)
    nearest = np.empty(len(queries), dtype=np.intp)
    for start, block in pairwise_distance_blocks(queries, reference, chunk_rows):
        nearest[start : start + len(block)] = block.argmin(axis=1)
    # The block distances lose digits to cancellation (an exact copy comes out near 1e-8, not 0); the
    # distance to the chosen neighbour is recomputed from the difference, which is exact for copies.
    return np.linalg.norm(queries - reference[nearest], axis=1)


def memorisation_check(
    train: np.ndarray, fake: np.ndarray, heldout: np.ndarray, *, chunk_rows: int = CHUNK_ROWS
) -> dict[str, float]:
    """Return nearest-training-sample distance statistics of `fake` against those of `heldout`.

    Keys: "fake_to_train_median" and "heldout_to_train_median" (medians of the distances from each fake /
    held-out sample to its nearest training sample); "ratio" (fake median / held-out median, NaN when the
    held-out median is 0; well below 1 suggests copying); "copied_fraction" (fraction of fake samples no
    farther from the training set than the 1st percentile of held-out distances). All arrays are (N, d)
    features with the same d; `heldout` must be real data kept out of training.
    """
    train = as_features(train, "train", min_samples=1)
    fake = as_features(fake, "fake", min_samples=1)
    heldout = as_features(heldout, "heldout", min_samples=1)
    check_same_dims(train=train, fake=fake, heldout=heldout)
    fake_to_train = nearest_neighbour_distances(fake, train, chunk_rows=chunk_rows)
    heldout_to_train = nearest_neighbour_distances(heldout, train, chunk_rows=chunk_rows)
    fake_median = float(np.median(fake_to_train))
    heldout_median = float(np.median(heldout_to_train))
    if heldout_median > 0:
        ratio = fake_median / heldout_median
    else:
        logger.warning("half or more of the held-out samples duplicate training samples; ratio is NaN")
        ratio = float("nan")
    # <= rather than <: when over 1% of held-out rows duplicate training rows the threshold is 0, and exact
    # copies must still count as copied.
    threshold = np.percentile(heldout_to_train, COPY_PERCENTILE)
    return {
        "fake_to_train_median": fake_median,
        "heldout_to_train_median": heldout_median,
        "ratio": ratio,
        "copied_fraction": float((fake_to_train <= threshold).mean()),
    }

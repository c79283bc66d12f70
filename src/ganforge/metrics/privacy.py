"""Privacy of a synthetic table: do synthetic rows sit closer to the training rows than fresh real rows do?

Distance: Gower's, the mean over the table's columns of a per-column difference in [0, 1], computed as the L1
distance between encoded rows divided by the number of columns. The encoding:

- numeric columns (datetimes as nanoseconds) are min-max scaled by the REAL TRAINING rows and clipped to
  [0, 1], so a column contributes |x - y| / range, at most 1 however wild a synthetic value is;
- categorical and boolean columns are one-hot with weight 1/2, so two different categories differ by 1;
  the categories come from all tables compared, so one unseen in training still differs by 1;
- missing values: in a discrete column a category of their own; in a numeric column (where missing values
  occur at all) an indicator of weight 1/2 plus the value 1/2, so missing against missing differs by 0 and
  missing against a present value by 1/2 to 1 (exact Gower would say 1, which no encoding can give).

The nearest-neighbour search is sklearn's NearestNeighbors (Manhattan metric) on the encoded matrix,
queried in blocks of QUERY_ROWS rows, so memory stays at the encoded tables plus one block. The encoding has
one column per numeric column and per category, so a column with thousands of categories makes it wide (and
the search slow).

The reference throughout is a holdout: real rows from the same population that the generator never saw. A
generator that samples the population puts its rows as far from the training rows as holdout rows are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ganforge.errors import UserError
from ganforge.metrics.tabular import NUMERIC_KINDS, check_kinds, discrete_codes, numeric_values

QUERY_ROWS = 4096  # rows per nearest-neighbour query block


def encode_for_distance(
    kinds: Mapping[str, str], train: pd.DataFrame, *others: pd.DataFrame
) -> list[np.ndarray]:
    """Return the encoded (n, d) float64 matrix of train and of each other table, in that order, whose L1
    distances divided by len(kinds) are Gower distances (module docstring); numeric scales come from train."""
    tables = (train, *others)
    blocks: list[list[np.ndarray]] = [[] for _ in tables]
    for name, kind in kinds.items():
        if kind in NUMERIC_KINDS:
            values = [numeric_values(table[name], kind) for table in tables]
            present = values[0][~np.isnan(values[0])]
            low, span = (present.min(), present.max() - present.min()) if len(present) else (0.0, 0.0)
            span = span if span > 0 else 1.0  # a constant (or empty) column: differences count in raw units
            any_missing = any(np.isnan(column).any() for column in values)
            for block, column in zip(blocks, values, strict=True):
                missing = np.isnan(column)
                scaled = np.clip((column - low) / span, 0.0, 1.0)
                block.append(np.where(missing, 0.5, scaled)[:, None])
                if any_missing:
                    block.append(0.5 * missing[:, None])
        else:
            codes, n_codes = discrete_codes(*(table[name] for table in tables))
            one_hot = 0.5 * np.eye(n_codes)
            for block, column in zip(blocks, codes, strict=True):
                block.append(one_hot[column])
    return [np.hstack(block) for block in blocks]


def nearest_distances(queries: np.ndarray, reference: np.ndarray, k: int = 1) -> np.ndarray:
    """Return the L1 distances (Q, k) from each encoded query row to its k nearest encoded reference rows,
    nearest first."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k, metric="manhattan").fit(reference)
    distances = np.empty((len(queries), k))
    for start in range(0, len(queries), QUERY_ROWS):
        block = queries[start : start + QUERY_ROWS]
        distances[start : start + len(block)] = index.kneighbors(block, return_distance=True)[0]
    return distances


def _row_hashes(kinds: Mapping[str, str], *tables: pd.DataFrame) -> list[np.ndarray]:
    """Return a hash per row of each table, equal for rows equal in every column (missing equals missing)."""
    columns: list[list[np.ndarray]] = [[] for _ in tables]
    for name, kind in kinds.items():
        if kind in NUMERIC_KINDS:
            for column, table in zip(columns, tables, strict=True):
                column.append(numeric_values(table[name], kind) + 0.0)  # + 0.0 makes -0.0 hash as 0.0
        else:
            codes, _ = discrete_codes(*(table[name] for table in tables))
            for column, table_codes in zip(columns, codes, strict=True):
                column.append(table_codes)
    return [
        pd.util.hash_pandas_object(pd.DataFrame(dict(enumerate(column))), index=False).to_numpy()
        for column in columns
    ]


def _check_rows(minimum: int, **tables: pd.DataFrame) -> None:
    for name, table in tables.items():
        if len(table) < minimum:
            raise UserError(f"the {name} table needs at least {minimum} rows, it has {len(table)}")


def _equal_subsamples(
    train: np.ndarray, holdout: np.ndarray, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return train and holdout rows subsampled without replacement to the smaller of the two counts."""
    rng = np.random.default_rng(random_state)
    size = min(len(train), len(holdout))
    return (
        train[rng.choice(len(train), size, replace=False)],
        holdout[rng.choice(len(holdout), size, replace=False)],
    )


def _nndr(distances: np.ndarray) -> np.ndarray:
    """Return d1 / d2 per row of (n, 2) nearest distances; 1 where both are 0 (two equally near records)."""
    nearest, second = distances[:, 0], distances[:, 1]
    return np.divide(nearest, second, out=np.ones_like(nearest), where=second > 0)


@dataclass(frozen=True)
class DCRReport:
    """Distances to the closest training record (Gower, in [0, 1]) of synthetic rows, against those of holdout
    rows; synthetic rows markedly closer than holdout rows hint at copied training records."""

    synthetic_median: float  # median distance of a synthetic row to its closest train row
    synthetic_p5: float  # 5th percentile of the same
    holdout_median: float  # median distance of a holdout row to its closest train row (the reference)
    holdout_p5: float  # 5th percentile of the same
    synthetic_nndr: float  # median of d1/d2 to the two closest train rows; near 0 = singles out one record
    holdout_nndr: float  # the same for holdout rows
    exact_copies: int  # synthetic rows equal to some train row in every column (missing equals missing)
    closer_to_train_share: float  # synthetic rows closer to train than to holdout (equal sizes; 0.5 ideal)
    n_synthetic: int  # synthetic rows scored


def distance_to_closest_record(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    kinds: Mapping[str, str],
    random_state: int = 0,
) -> DCRReport:
    """Return the distances of synthetic rows to their closest training rows, with holdout rows as reference.

    Args:
        train: the real rows the generator was trained on; they also set the numeric scales.
        synthetic: the generated rows.
        holdout: real rows from the same population that the generator never saw.
        kinds: column name -> kind, for every column of the three tables.
        random_state: seeds the subsampling of train and holdout to equal sizes for closer_to_train_share
            (a synthetic row is likelier to find its nearest record in the larger table otherwise); ties count
            half.
    """
    check_kinds(kinds, train=train, synthetic=synthetic, holdout=holdout)
    _check_rows(2, train=train)
    train_x, synthetic_x, holdout_x = encode_for_distance(kinds, train, synthetic, holdout)
    width = len(kinds)  # L1 on the encoding / number of columns = Gower distance
    synthetic_d = nearest_distances(synthetic_x, train_x, k=2) / width
    holdout_d = nearest_distances(holdout_x, train_x, k=2) / width
    train_hashes, synthetic_hashes = _row_hashes(kinds, train, synthetic)
    train_sample, holdout_sample = _equal_subsamples(train_x, holdout_x, random_state)
    to_train = nearest_distances(synthetic_x, train_sample)[:, 0]
    to_holdout = nearest_distances(synthetic_x, holdout_sample)[:, 0]
    closer = np.mean(to_train < to_holdout) + 0.5 * np.mean(to_train == to_holdout)
    return DCRReport(
        synthetic_median=float(np.median(synthetic_d[:, 0])),
        synthetic_p5=float(np.percentile(synthetic_d[:, 0], 5)),
        holdout_median=float(np.median(holdout_d[:, 0])),
        holdout_p5=float(np.percentile(holdout_d[:, 0], 5)),
        synthetic_nndr=float(np.median(_nndr(synthetic_d))),
        holdout_nndr=float(np.median(_nndr(holdout_d))),
        exact_copies=int(np.isin(synthetic_hashes, train_hashes).sum()),
        closer_to_train_share=float(closer),
        n_synthetic=len(synthetic),
    )


def membership_inference_auc(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    kinds: Mapping[str, str],
    random_state: int = 0,
) -> float:
    """Return the ROC AUC of a distance-based membership-inference attack: 0.5 = nothing leaks, 1 = every
    training row is told apart from every holdout row.

    The attacker holds candidate rows, half of them training rows (members) and half holdout rows
    (non-members; both subsampled to the smaller count with `random_state`), and only the synthetic table. It
    scores each candidate by minus its Gower distance to the nearest synthetic row, betting that a generator
    which memorised a record puts a synthetic row on top of it.
    """
    from sklearn.metrics import roc_auc_score

    check_kinds(kinds, train=train, holdout=holdout, synthetic=synthetic)
    train_x, holdout_x, synthetic_x = encode_for_distance(kinds, train, holdout, synthetic)
    members, non_members = _equal_subsamples(train_x, holdout_x, random_state)
    scores = -nearest_distances(np.vstack([members, non_members]), synthetic_x)[:, 0]
    is_member = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    return float(roc_auc_score(is_member, scores))

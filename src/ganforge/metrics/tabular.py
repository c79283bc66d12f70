"""Quality of a synthetic table against the real one: column shapes, pair trends and ML efficacy.

In the spirit of sdmetrics' QualityReport, in our own code. A table's columns have kinds, `kinds[name]` one of
"continuous", "integer", "categorical", "boolean", "datetime"; numeric kinds are continuous, integer and
datetime (as int64 nanoseconds), discrete kinds are categorical and boolean. Any column may hold missing
values; categories may be strings or numbers. Every score is in [0, 1] with 1 meaning "the same":

- column shape, numeric: (1 - KS) * (1 - |missing rate real - missing rate synthetic|), KS the two-sample
  Kolmogorov-Smirnov statistic on the present values. KS alone cannot see missing values, so the missing rate
  enters as a separate factor: a generator that drops or invents missing values loses exactly that share.
- column shape, discrete: 1 - total variation distance between the frequency tables, missing a category of
  its own (so no separate factor is needed).
- pair trend, numeric x numeric: 1 - |r_real - r_synthetic| / 2, r Pearson's correlation on the rows where
  both are present; NaN where a correlation is undefined (a constant column, fewer than two rows), and NaN
  pairs are left out of the averages.
- pair trend, discrete x discrete: contingency similarity, 1 - total variation distance between the joint
  frequency tables (missing again a category of its own).
- pair trend, numeric x discrete: the numeric column is cut into PAIR_BINS quantile bins whose edges come from
  the REAL data (the same edges for both tables, values outside the real range in the end bins, missing in a
  bin of its own), then contingency similarity.

ML efficacy trains a gradient-boosted model on the real training split and on the synthetic table and tests
both on a real test split: a synthetic table that carries what predicts the target scores close to real.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from ganforge.errors import UserError

KINDS = ("continuous", "integer", "categorical", "boolean", "datetime")
NUMERIC_KINDS = frozenset({"continuous", "integer", "datetime"})
DISCRETE_KINDS = frozenset({"categorical", "boolean"})
PAIR_BINS = 10  # quantile bins of a numeric column when it is paired with a discrete one
NATIVE_CATEGORIES = 255  # HistGradientBoosting's max_bins: more categories than this go in as ordinal codes


def check_kinds(kinds: Mapping[str, str], **tables: pd.DataFrame) -> None:
    """Return nothing; raise UserError unless every kind is known and every table (named by its keyword) has
    exactly the columns of `kinds` and at least one row."""
    for column, kind in kinds.items():
        if kind not in KINDS:
            raise UserError(f"column {column!r} has unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    for name, table in tables.items():
        for column in kinds:
            if column not in table.columns:
                raise UserError(f"column {column!r} is missing from the {name} table")
        for column in table.columns:
            if column not in kinds:
                raise UserError(f"column {column!r} of the {name} table has no kind")
        if len(table) == 0:
            raise UserError(f"the {name} table has no rows")


def _check_kind(name: object, kind: str) -> None:
    if kind not in KINDS:
        raise UserError(f"column {name!r} has unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")


def numeric_values(series: pd.Series, kind: str) -> np.ndarray:
    """Return a numeric column as float64 (n,), NaN where missing; datetimes as nanoseconds since 1970.

    float64 keeps datetimes to about 0.3 microseconds, far finer than any distribution comparison needs.
    """
    if kind == "datetime":
        try:
            stamps = pd.to_datetime(series)
        except (ValueError, TypeError) as error:
            raise UserError(
                f"column {series.name!r} is of kind datetime but holds non-dates ({error})"
            ) from None
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        nanoseconds = stamps.to_numpy(dtype="datetime64[ns]")
        values = nanoseconds.view(np.int64).astype(np.float64)
        values[np.isnat(nanoseconds)] = np.nan
        return values
    try:
        numbers = pd.to_numeric(series, errors="raise")
    except (ValueError, TypeError) as error:
        raise UserError(f"column {series.name!r} is of kind {kind} but holds non-numbers ({error})") from None
    return pd.Series(numbers).to_numpy(dtype=np.float64, na_value=np.nan)


def discrete_codes(*columns: pd.Series) -> tuple[list[np.ndarray], int]:
    """Return integer codes (one array per column) over the categories of all columns together, and how many
    codes there are; missing values (NaN, None, NaT, pd.NA) share the last code."""
    codes, categories = pd.factorize(pd.concat(columns, ignore_index=True))
    codes = np.where(codes < 0, len(categories), codes)
    bounds = np.cumsum([0] + [len(column) for column in columns])
    return [codes[start:stop] for start, stop in zip(bounds[:-1], bounds[1:], strict=True)], len(
        categories
    ) + 1


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Return the two-sample Kolmogorov-Smirnov statistic, the largest gap between the ECDFs of a and b."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])  # the gap is largest at one of the observed values
    gap = np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(gap).max())


def total_variation(real_codes: np.ndarray, synthetic_codes: np.ndarray, n_codes: int) -> float:
    """Return half the L1 distance between the frequency tables of two code arrays, in [0, 1]."""
    real_freq = np.bincount(real_codes, minlength=n_codes) / len(real_codes)
    synthetic_freq = np.bincount(synthetic_codes, minlength=n_codes) / len(synthetic_codes)
    return 0.5 * float(np.abs(real_freq - synthetic_freq).sum())


def column_shape(real: pd.Series, synthetic: pd.Series, kind: str) -> float:
    """Return how alike the marginal distributions of a column are, in [0, 1] (module docstring)."""
    _check_kind(real.name, kind)
    if kind in DISCRETE_KINDS:
        (real_codes, synthetic_codes), n_codes = discrete_codes(real, synthetic)
        return 1.0 - total_variation(real_codes, synthetic_codes, n_codes)
    real_values, synthetic_values = numeric_values(real, kind), numeric_values(synthetic, kind)
    real_present = real_values[~np.isnan(real_values)]
    synthetic_present = synthetic_values[~np.isnan(synthetic_values)]
    if len(real_present) and len(synthetic_present):
        shape = 1.0 - ks_statistic(real_present, synthetic_present)
    else:  # nothing to compare: alike only if both are all missing
        shape = float(len(real_present) == len(synthetic_present))
    missing_gap = abs(np.isnan(real_values).mean() - np.isnan(synthetic_values).mean())
    return shape * (1.0 - float(missing_gap))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Return Pearson's correlation of x and y on the rows where both are present; NaN where undefined."""
    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    if len(x) < 2:
        return math.nan
    x, y = x - x.mean(), y - y.mean()  # centred first: datetimes in ns would lose digits in sum(x * y)
    scale = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / scale if scale > 0 else math.nan


def quantile_bins(
    real: np.ndarray, synthetic: np.ndarray, bins: int = PAIR_BINS
) -> tuple[list[np.ndarray], int]:
    """Return bin codes for a real and a synthetic numeric column and how many codes there are: `bins`
    quantile bins with edges from the real present values, applied to both, missing in the last code."""
    present = real[~np.isnan(real)]
    inner = np.linspace(0, 1, bins + 1)[1:-1]
    edges = np.unique(np.quantile(present, inner)) if len(present) else np.empty(0)
    missing_code = len(edges) + 1
    codes = []
    for values in (real, synthetic):
        binned = np.searchsorted(edges, values, side="right")
        codes.append(np.where(np.isnan(values), missing_code, binned))
    return codes, missing_code + 1


@dataclass
class _Column:
    """One column of both tables, ready for pair trends; numeric columns carry values, discrete ones codes."""

    kind: str
    real: np.ndarray
    synthetic: np.ndarray
    n_codes: int = 0  # for discrete columns
    binned: tuple[list[np.ndarray], int] | None = None  # numeric columns' quantile bins, made when needed

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    def codes(self) -> tuple[np.ndarray, np.ndarray, int]:
        if self.numeric:
            if self.binned is None:
                self.binned = quantile_bins(self.real, self.synthetic)
            (real_codes, synthetic_codes), n_codes = self.binned
            return real_codes, synthetic_codes, n_codes
        return self.real, self.synthetic, self.n_codes


def _prepare(real: pd.Series, synthetic: pd.Series, kind: str) -> _Column:
    _check_kind(real.name, kind)
    if kind in NUMERIC_KINDS:
        return _Column(kind, numeric_values(real, kind), numeric_values(synthetic, kind))
    (real_codes, synthetic_codes), n_codes = discrete_codes(real, synthetic)
    return _Column(kind, real_codes, synthetic_codes, n_codes)


def _pair_trend(a: _Column, b: _Column) -> float:
    if a.numeric and b.numeric:
        real_r, synthetic_r = pearson(a.real, b.real), pearson(a.synthetic, b.synthetic)
        return 1.0 - abs(real_r - synthetic_r) / 2  # NaN when either is undefined
    real_a, synthetic_a, n_a = a.codes()
    real_b, synthetic_b, n_b = b.codes()
    # The joint table of (a, b) is the frequency table of the combined code a * n_b + b.
    return 1.0 - total_variation(real_a * n_b + real_b, synthetic_a * n_b + synthetic_b, n_a * n_b)


def pair_trend(
    real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str, kinds: Mapping[str, str]
) -> float:
    """Return how alike the relationship of columns a and b is in both tables, in [0, 1] or NaN where a
    correlation is undefined (module docstring)."""
    for column in (a, b):
        if column not in kinds:
            raise UserError(f"column {column!r} has no kind")
        for name, table in (("real", real), ("synthetic", synthetic)):
            if column not in table.columns:
                raise UserError(f"column {column!r} is missing from the {name} table")
    return _pair_trend(_prepare(real[a], synthetic[a], kinds[a]), _prepare(real[b], synthetic[b], kinds[b]))


@dataclass(frozen=True)
class TabularQuality:
    """How alike a synthetic table is to the real one; every score in [0, 1], 1 meaning the same."""

    column_shapes: float  # mean column shape
    pair_trends: float  # mean pair trend over all column pairs, undefined (NaN) pairs left out
    overall: float  # mean of column_shapes and pair_trends
    per_column: dict[str, float]  # column -> column shape
    per_pair: dict[tuple[str, str], float]  # (a, b) in column order -> pair trend, NaN where undefined


def _nanmean(values: list[float]) -> float:
    defined = [value for value in values if not math.isnan(value)]
    return sum(defined) / len(defined) if defined else math.nan


def quality(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: Mapping[str, str]) -> TabularQuality:
    """Return the column shapes and pair trends of a synthetic table against the real one."""
    check_kinds(kinds, real=real, synthetic=synthetic)
    names = list(real.columns)
    per_column = {name: column_shape(real[name], synthetic[name], kinds[name]) for name in names}
    # Each column is converted (and binned, if paired with a discrete one) once, not once per pair.
    columns = {name: _prepare(real[name], synthetic[name], kinds[name]) for name in names}
    per_pair = {(a, b): _pair_trend(columns[a], columns[b]) for a, b in combinations(names, 2)}
    shapes, trends = _nanmean(list(per_column.values())), _nanmean(list(per_pair.values()))
    return TabularQuality(
        column_shapes=shapes,
        pair_trends=trends,
        overall=_nanmean([shapes, trends]),
        per_column=per_column,
        per_pair=per_pair,
    )


@dataclass(frozen=True)
class Efficacy:
    """Machine-learning efficacy: a model trained on synthetic data, tested on real data, against one trained
    on real data."""

    task: str  # "classification" (categorical or boolean target) or "regression"
    metric: str  # "macro F1" or "R2", on the real test split
    real_score: float  # trained on the real training split
    synthetic_score: float  # trained on the synthetic table
    ratio: float  # synthetic_score / real_score; NaN where real_score <= 0 (a ratio would mislead)


def _features(
    tables: list[pd.DataFrame], fit_tables: list[pd.DataFrame], kinds: Mapping[str, str], target: str
) -> tuple[list[np.ndarray], list[bool]]:
    """Return a float64 feature matrix per table and which features are native categorical ones."""
    blocks: list[list[np.ndarray]] = [[] for _ in tables]
    categorical: list[bool] = []
    for name, kind in kinds.items():
        if name == target:
            continue
        if kind in NUMERIC_KINDS:
            for block, table in zip(blocks, tables, strict=True):
                block.append(numeric_values(table[name], kind))
            categorical.append(False)
            continue
        # Categories from the training tables; a category seen only at test time becomes missing.
        categories = pd.Index(pd.concat([table[name] for table in fit_tables]).dropna().unique())
        for block, table in zip(blocks, tables, strict=True):
            codes = categories.get_indexer(table[name]).astype(np.float64)
            block.append(np.where(codes < 0, np.nan, codes))
        categorical.append(len(categories) <= NATIVE_CATEGORIES)
    width = len(categorical)
    matrices = [
        np.column_stack(block) if width else np.empty((len(t), 0))
        for block, t in zip(blocks, tables, strict=True)
    ]
    return matrices, categorical


def _fit_predict(
    task: str, features: np.ndarray, labels: np.ndarray, test: np.ndarray, categorical: list[bool], seed: int
) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if task == "classification" and len(np.unique(labels)) == 1:
        # One class cannot be fitted; a model that saw only it would predict it, so that is what we score.
        return np.full(len(test), labels[0])
    model_type = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    mask = np.array(categorical, dtype=bool) if any(categorical) else None
    model = model_type(categorical_features=mask, random_state=seed)
    return model.fit(features, labels).predict(test)


def ml_efficacy(
    train: pd.DataFrame,
    test: pd.DataFrame,
    target: str,
    kinds: Mapping[str, str],
    synthetic: pd.DataFrame,
    random_state: int = 0,
) -> Efficacy:
    """Return the test score of a model trained on the synthetic table against one trained on the real
    training split, both tested on the real test split.

    Args:
        train: the real rows the generator was trained on.
        test: real rows neither the generator nor the models saw.
        target: the column to predict; classification for a categorical or boolean one, else regression.
        kinds: column name -> kind, for every column of the three tables.
        synthetic: the generated table.
        random_state: seeds the models (their early-stopping split on large tables).
    """
    from sklearn.metrics import f1_score, r2_score

    if target not in kinds:
        raise UserError(f"target column {target!r} has no kind (is it a column of the tables?)")
    check_kinds(kinds, train=train, test=test, synthetic=synthetic)
    kind = kinds[target]
    task = "classification" if kind in DISCRETE_KINDS else "regression"
    tables = {"train": train, "test": test, "synthetic": synthetic}
    # Rows without a target value are dropped from every table: there is nothing to learn or score there.
    if task == "classification":
        codes, _ = discrete_codes(*(table[target] for table in tables.values()))
        labels = dict(zip(tables, codes, strict=True))
        present = {name: ~table[target].isna().to_numpy() for name, table in tables.items()}
    else:
        labels = {name: numeric_values(table[target], kind) for name, table in tables.items()}
        present = {name: ~np.isnan(values) for name, values in labels.items()}
    for name, rows in present.items():
        if not rows.any():
            raise UserError(f"target column {target!r} of the {name} table has no values")
    kept = {name: table[present[name]] for name, table in tables.items()}
    labels = {name: values[present[name]] for name, values in labels.items()}
    (train_x, test_x, synthetic_x), categorical = _features(
        [kept["train"], kept["test"], kept["synthetic"]], [kept["train"], kept["synthetic"]], kinds, target
    )

    def score(predicted: np.ndarray) -> float:
        if task == "classification":
            return float(f1_score(labels["test"], predicted, average="macro", zero_division=0))
        return float(r2_score(labels["test"], predicted))

    real_score = score(_fit_predict(task, train_x, labels["train"], test_x, categorical, random_state))
    synthetic_score = score(
        _fit_predict(task, synthetic_x, labels["synthetic"], test_x, categorical, random_state)
    )
    return Efficacy(
        task=task,
        metric="macro F1" if task == "classification" else "R2",
        real_score=real_score,
        synthetic_score=synthetic_score,
        ratio=synthetic_score / real_score if real_score > 0 else math.nan,
    )

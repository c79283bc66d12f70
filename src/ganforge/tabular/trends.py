"""Linear trends taken out of numeric columns before the GAN learns a table, and put back in its samples.

A GAN gets a table's strongest relations least exactly. On diamonds after 30 epochs, log price against log
carat had R² 0.52 in the samples and 0.93 in the data, and the correlation of log x and log carat was 0.74
against 0.998: the generator draws each column's mixture mode on its own, so two columns that move together
to within a percent come out only loosely tied. A classifier trained on such samples cannot read colour or
clarity off the price of a stone of a given weight.

So before training, a numeric column whose value a linear model explains well is replaced by that model's
residual, and the GAN learns the residual:

    f(column) = intercept + slope * f(anchor) + effect[level of each categorical column] + residual

- f is log for a column whose values are (nearly all) positive, else the value itself. Sizes, weights and
  prices relate by powers, which are lines in logs.
- The anchor is one other numeric column. Anchors form a tree: the maximum spanning forest of the numeric
  columns' |correlation| (in f), using only pairs correlated at least MIN_ANCHOR_CORRELATION, each tree rooted
  at its most connected column. Restoring the samples follows the tree from the roots, so every anchor is
  back in its own units before a column that leans on it.
- Every categorical (and boolean) column adds an effect per level. The most frequent level is the
  reference (effect 0); so is every level past the MAX_EFFECT_LEVELS most frequent.
- The model is least squares, fitted again without the rows whose residuals lie in the outer TRIM share at
  either end, so a few bad rows (diamonds with x = 0) do not tilt it.
- A column keeps its trend only if the trend explains at least MIN_EXPLAINED of its variance (R², all rows).

A missing anchor value counts as the anchor's mean; a missing value of the column itself stays missing (its
residual is missing, which the GAN learns as a mode of its own). Datetime columns keep no trend.

Restoring: f⁻¹ of the trend plus the sampled residual, then clipped to the column's observed range (when
sampled numbers are clipped) and rounded to its step (integers stay integers). Only coefficients are kept,
never a row; private fits get no trends (the trends are fitted on the data, see TabularGAN).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ganforge.tabular.columns import NumericColumn, _is_missing, _plain, _resolution

# A column whose trend explains less of its variance than this keeps its values. A looser relation is left
# to the maps within levels, which give a level its whole distribution, not only its mean: with a bar of 0.5
# gbsg2's age got a trend (R² 0.58, from menopausal status) and sdmetrics' pair trends fell 0.914 -> 0.882.
MIN_EXPLAINED = 0.75
MIN_ANCHOR_CORRELATION = 0.8  # two numeric columns this correlated (|r| in f) may anchor one another
MAX_EFFECT_LEVELS = 20  # levels of a categorical column with an effect of their own (the most frequent)
TRIM = 0.005  # the refit leaves out the rows with this share of the smallest and of the largest residuals
NUMERIC = ("continuous", "integer")


@dataclass
class Trend:
    """The linear trend of one numeric column, in f = log or the identity (see the module's docstring)."""

    name: str
    kind: str
    dtype: str
    log: bool  # f is log (with values below `floor` taken as `floor`)
    floor: float
    low: float  # the column's observed range and step, to clip and round restored numbers
    high: float
    step: float
    intercept: float
    anchor: str = ""  # the numeric column it leans on; "" for none
    anchor_log: bool = False  # ... its f (log or not) and floor
    anchor_floor: float = 0.0
    anchor_mean: float = 0.0  # f(anchor) taken where the anchor is missing
    slope: float = 0.0
    effects: dict[str, list[list[Any]]] = field(default_factory=dict)  # column -> [[level, effect], ...]
    explained: float = 0.0  # R² of the trend on the training rows

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Return the trend's f-value for every row of `table` (which holds the anchor in its own units)."""
        values = np.full(len(table), self.intercept)
        if self.anchor:
            anchor = _f(table[self.anchor], self.anchor_log, self.anchor_floor)
            values += self.slope * np.where(np.isnan(anchor), self.anchor_mean, anchor)
        for column, pairs in self.effects.items():
            series = table[column]
            effect = {level: value for level, value in pairs if level is not None}
            found = series.astype(object).map(effect).to_numpy(np.float64)  # NaN: no effect of its own
            missing = dict(pairs).get(None, 0.0)
            values += np.where(series.isna().to_numpy(), missing, np.nan_to_num(found, nan=0.0))
        return values

    def restore(self, residuals: pd.Series, table: pd.DataFrame, clip: bool) -> pd.Series:
        """Return the column's numbers from sampled `residuals` and the rest of the restored row."""
        values = self.predict(table) + residuals.to_numpy(np.float64)  # NaN (missing) stays NaN
        if self.log:
            values = np.exp(np.minimum(values, 700.0))
        # clipped, rounded and typed as the column's own numbers are
        column = NumericColumn(self.name, self.kind, self.dtype, low=self.low, high=self.high, step=self.step)
        return column.to_series(column.settle(values, clip)).set_axis(table.index)


class Trends:
    """The trends of a table's numeric columns: `fit`, `remove` (before training), `restore` (samples)."""

    def __init__(self, trends: list[Trend]):
        self.trends = trends  # in restoring order: every anchor before the columns that lean on it

    @classmethod
    def fit(cls, table: pd.DataFrame, kinds: Mapping[str, str]) -> Trends:
        """Return the trends worth keeping for `table`, whose columns have `kinds` (see columns.py)."""
        numeric = [name for name in table.columns if kinds[name] in NUMERIC and table[name].nunique() > 1]
        scale = {name: _scale(table[name]) for name in numeric}
        f = {name: _f(table[name], *scale[name]) for name in numeric}
        design = _effects_design(
            table, [name for name in table.columns if kinds[name] not in (*NUMERIC, "datetime")]
        )
        trends = []
        for name, anchor in _anchor_order(f):
            trend = _fit_trend(table[name], f[name], scale[name], kinds[name], anchor, f, scale, design)
            if trend is not None:
                trends.append(trend)
        return cls(trends)

    @property
    def names(self) -> list[str]:
        return [trend.name for trend in self.trends]

    @property
    def kinds(self) -> dict[str, str]:
        return {trend.name: trend.kind for trend in self.trends}

    def remove(self, table: pd.DataFrame) -> pd.DataFrame:
        """Return `table` with each trend's column replaced by its residuals (float64, NaN where missing)."""
        if not self.trends:
            return table
        out = table.copy()
        for trend in self.trends:
            out[trend.name] = _f(table[trend.name], trend.log, trend.floor) - trend.predict(table)
        return out

    def restore(self, table: pd.DataFrame, clip: bool = True) -> pd.DataFrame:
        """Return sampled rows with each trend's residuals turned back into the column's numbers."""
        if not self.trends:
            return table
        out = table.copy()
        for trend in self.trends:  # anchors first: `predict` reads them already restored
            out[trend.name] = trend.restore(table[trend.name], out, clip)
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [dict(trend.__dict__) for trend in self.trends]

    @classmethod
    def from_json(cls, records: list[dict[str, Any]]) -> Trends:
        return cls([Trend(**record) for record in records])


def _key(value: Any) -> Any:
    """Return a level as it is stored: None for missing, plain Python scalars otherwise."""
    return None if _is_missing(value) else _plain(value)


def _scale(series: pd.Series) -> tuple[bool, float]:
    """Return (use log, floor): log when no value is negative and at most TRIM of them are 0; values
    below the floor (half the smallest positive one) count as the floor."""
    values = pd.to_numeric(series, errors="coerce").dropna().to_numpy(np.float64)
    positive = values[values > 0]
    if len(positive) < (1 - TRIM) * len(values) or values.min() < 0:
        return False, 0.0
    return True, float(positive.min()) / 2


def _f(series: pd.Series, log: bool, floor: float) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(np.float64)
    return np.log(np.maximum(values, floor)) if log else values


def _effects_design(table: pd.DataFrame, categorical: list[str]) -> list[tuple[str, list[Any], np.ndarray]]:
    """Return (column, levels with an effect, 0/1 matrix rows x levels) per categorical column."""
    design = []
    for name in categorical:
        keys = [_key(v) for v in table[name].astype(object)]
        counts = pd.Series(keys, dtype=object).value_counts(dropna=False, sort=True)
        levels = [_key(level) for level in counts.index[1:MAX_EFFECT_LEVELS]]  # the first is the reference
        if not levels:
            continue
        index = {level: i for i, level in enumerate(levels)}
        columns = np.array([index.get(key, -1) for key in keys])
        matrix = (columns[:, None] == np.arange(len(levels))[None, :]).astype(np.float64)
        design.append((name, levels, matrix))
    return design


def _anchor_order(f: Mapping[str, np.ndarray]) -> list[tuple[str, str]]:
    """Return (column, anchor or "") for every numeric column, each anchor listed before its children.

    The anchors are the maximum spanning forest of |correlation| between the columns' f-values, over the
    pairs correlated at least MIN_ANCHOR_CORRELATION (Kruskal); each tree is rooted at the column with the
    largest sum of |correlation| over its edges, and walked breadth first.
    """
    names = list(f)
    if len(names) < 2:
        return [(name, "") for name in names]
    matrix = np.column_stack([np.nan_to_num(f[name], nan=float(np.nanmean(f[name]))) for name in names])
    with np.errstate(invalid="ignore", divide="ignore"):
        strength = np.nan_to_num(np.abs(np.corrcoef(matrix, rowvar=False)))
    strength = (strength + strength.T) / 2  # exactly symmetric: a tie between two roots goes to column order
    pairs = sorted(
        ((strength[i, j], i, j) for i in range(len(names)) for j in range(i + 1, len(names))), reverse=True
    )
    group = list(range(len(names)))  # union-find over the columns

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    edges: dict[int, list[int]] = {i: [] for i in range(len(names))}
    for r, i, j in pairs:
        if r < MIN_ANCHOR_CORRELATION:
            break
        if root(i) != root(j):
            group[root(i)] = root(j)
            edges[i].append(j)
            edges[j].append(i)
    weight = {i: sum(strength[i, j] for j in edges[i]) for i in edges}
    order: list[tuple[str, str]] = []
    seen: set[int] = set()
    for start in sorted(edges, key=lambda i: -weight[i]):
        if start in seen:
            continue
        seen.add(start)
        queue = [(start, "")]
        while queue:
            i, anchor = queue.pop(0)
            order.append((names[i], anchor))
            for j in edges[i]:
                if j not in seen:
                    seen.add(j)
                    queue.append((j, names[i]))
    return order


def _fit_trend(
    series: pd.Series,
    target: np.ndarray,
    scale: tuple[bool, float],
    kind: str,
    anchor: str,
    f: Mapping[str, np.ndarray],
    scales: Mapping[str, tuple[bool, float]],
    design: list[tuple[str, list[Any], np.ndarray]],
) -> Trend | None:
    """Return the column's trend if it explains at least MIN_EXPLAINED of the column's variance, else None."""
    blocks, anchor_mean = [np.ones(len(target))], 0.0
    if anchor:
        anchor_mean = float(np.nanmean(f[anchor]))
        blocks.append(np.where(np.isnan(f[anchor]), anchor_mean, f[anchor]))
    blocks += [matrix for _, _, matrix in design]
    features = np.column_stack(blocks)
    present = ~np.isnan(target)
    if present.sum() < 2 * features.shape[1]:
        return None
    x, y = features[present], target[present]
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    residual = y - x @ coef
    low, high = np.quantile(residual, [TRIM, 1 - TRIM])
    kept = (residual >= low) & (residual <= high)
    coef = np.linalg.lstsq(x[kept], y[kept], rcond=None)[0]
    residual = y - x @ coef
    explained = 1 - float(residual.var()) / max(float(y.var()), 1e-300)
    if explained < MIN_EXPLAINED:
        return None
    values = pd.to_numeric(series, errors="coerce").dropna().to_numpy(np.float64)
    effects, k = {}, 1 + int(bool(anchor))
    for name, levels, _ in design:
        effects[name] = [
            [level, float(c)] for level, c in zip(levels, coef[k : k + len(levels)], strict=True)
        ]
        k += len(levels)
    return Trend(
        name=str(series.name),
        kind=kind,
        dtype=str(series.dtype),
        log=scale[0],
        floor=scale[1],
        low=float(values.min()),
        high=float(values.max()),
        step=_resolution(values, kind),
        intercept=float(coef[0]),
        anchor=anchor,
        anchor_log=scales[anchor][0] if anchor else False,
        anchor_floor=scales[anchor][1] if anchor else 0.0,
        anchor_mean=anchor_mean,
        slope=float(coef[1]) if anchor else 0.0,
        effects=effects,
        explained=explained,
    )

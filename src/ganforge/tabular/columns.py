"""Column kinds and the reversible transform between a table and the vectors the GAN sees.

Each column becomes a span of the generator's output (CTGAN, Xu et al. 2019):

- continuous, integer and datetime columns: **mode-specific normalisation**. A Bayesian Gaussian mixture
  (at most 10 modes, Dirichlet-process prior) is fitted to the column; a value is encoded as the one-hot of
  a mode drawn from its posterior and a scalar `(x - mean_k) / (4 std_k)` in [-1, 1]. A column with missing
  values gets one more "missing" mode, so the missing rate is learnt like any other mode's weight.
- categorical and boolean columns: one-hot over the levels, with missing values as a level of their own.

The training data is kept compactly, as one float and one code per numeric column and one code per
categorical column; one-hot vectors are built per batch. So a column with thousands of levels costs a batch
times the levels, never rows times levels (CTGAN's full one-hot matrix is what runs out of memory). Past
`max_categories` levels, the rarest are pooled into one "other" level: the model learns how often "other"
occurs, and a sampled "other" is resolved to one of the pooled levels by their training frequencies.

After training, a numeric column may also get a **marginal map** (`NumericColumn.fit_marginal_map`): a
monotone map from the generator's quantiles to the mixture's, fitted on generated numbers; and **maps within
the levels** of its parent categorical column (`TableTransformer._fit_level_maps`), to mixtures fitted per
level. A categorical column may get **level offsets** (`CategoricalColumn.fit_offsets`): one number per
level added to the generator's logits when sampling, so that the levels come out at their training
frequencies.

What the fitted transform keeps (and a saved model holds): per numeric column the mixture's weights, means
and standard deviations, the observed minimum and maximum (to keep samples in range), the resolution and
the maps' quantiles (of generated numbers and of mixtures); per categorical column its levels, their
frequencies and the level offsets. No training row is kept.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ganforge.errors import UserError
from ganforge.metrics.tabular import ks_statistic

KINDS = ("continuous", "integer", "categorical", "boolean", "datetime")
MAX_MODES = 10
MIN_MODE_WEIGHT = 0.005  # mixture components lighter than this are dropped
MIXTURE_ROWS = 10_000  # the mixture is fitted on at most this many values (a random subset)
LEVEL_MAP_POINTS = 201  # quantile levels of a map within one level of a categorical column
LEVEL_MIXTURE_ROWS = 2_000  # a level's mixture is fitted on at most this many of its numbers
LEVEL_MAP_MIN_ROWS = 100  # a level gets a map only with this many training and generated numbers
LEVEL_MAP_MAX_LEVELS = 20  # only the most frequent levels of the parent column get maps
LEVEL_MAP_MIN_EXPLAINED = 0.01  # a parent must explain this share of a column's variance (adjusted)
OFFSET_ITERATIONS = 200  # Sinkhorn steps of `CategoricalColumn.fit_offsets`, at most
OFFSET_TOLERANCE = 1e-4  # ... stopping when every level's expected share is this close to its frequency
OFFSET_STEP = 2.0  # ... each step moving an offset by at most this
OFFSET_LIMIT = 10.0  # no offset goes past +-this: a level the generator never makes cannot run away
AUTO_DISCRETE_LEVELS = 10  # under "auto", a numeric column with at most this many values is categorical
NS_PER_S = 1_000_000_000


@dataclass
class Span:
    """A slice of the generator's output: `width` units, activated by tanh (a scalar) or softmax (one-hot)."""

    column: str
    activation: str  # "tanh" or "softmax"
    width: int


def _plain(value: Any) -> Any:
    """Return `value` as a JSON-ready Python scalar (numpy scalars become int/float/bool/str)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


@dataclass
class NumericColumn:
    """A continuous, integer or datetime column under mode-specific normalisation."""

    name: str
    kind: str
    dtype: str
    weights: list[float] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    low: float = 0.0
    high: float = 0.0
    step: float = 0.0  # values are multiples of this (1 for integers, 86,400 s for dates); 0 = any
    has_missing: bool = False
    # the marginal map (see `fit_marginal_map`): quantiles of the generator's values and of the mixture
    source: list[float] = field(default_factory=list)
    target: list[float] = field(default_factory=list)
    # maps of their own for the rows at some levels of one categorical column (see `level_map`)
    parent: str = ""
    level_codes: list[int] = field(default_factory=list)
    level_sources: list[list[float]] = field(default_factory=list)
    level_targets: list[list[float]] = field(default_factory=list)

    @property
    def n_modes(self) -> int:
        return len(self.means) + int(self.has_missing)

    def spans(self) -> list[Span]:
        return [Span(self.name, "tanh", 1), Span(self.name, "softmax", self.n_modes)]

    def to_float(self, series: pd.Series) -> np.ndarray:
        """Return the column as float64 (datetimes in seconds since 1970), NaN where missing."""
        if self.kind == "datetime":
            stamps = pd.to_datetime(series)
            seconds = stamps.astype("int64").to_numpy().astype(np.float64) / NS_PER_S
            return np.where(stamps.isna().to_numpy(), np.nan, seconds)
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)

    def fit(self, series: pd.Series, rng: np.random.Generator) -> None:
        values = self.to_float(series)
        present = values[~np.isnan(values)]
        self.has_missing = bool(np.isnan(values).any())
        self.low, self.high = float(present.min()), float(present.max())
        self.step = _resolution(present, self.kind)
        self.weights, self.means, self.stds = fit_mixture(present, rng)

    def encode(self, series: pd.Series, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return (scalar in [-1, 1], mode code) per row; a mode is drawn from each value's posterior."""
        values = self.to_float(series)
        missing = np.isnan(values)
        means, stds = np.asarray(self.means), np.asarray(self.stds)
        filled = np.where(missing, means[0], values)[:, None]  # (N, 1) against (K,)
        log_post = np.log(np.asarray(self.weights)) - np.log(stds) - 0.5 * ((filled - means) / stds) ** 2
        post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        cumulative = post.cumsum(axis=1)
        modes = (rng.random((len(values), 1)) > cumulative).sum(axis=1).clip(max=len(means) - 1)
        scalars = ((filled[:, 0] - means[modes]) / (4 * stds[modes])).clip(-0.99, 0.99)
        modes = np.where(missing, len(means), modes)  # the "missing" mode comes last
        return np.where(missing, 0.0, scalars).astype(np.float32), modes.astype(np.int64)

    def values(self, scalars: np.ndarray, modes: np.ndarray) -> np.ndarray:
        """Return the numbers that (scalar, mode) pairs stand for, before any map, clipping or rounding."""
        missing = modes >= len(self.means)
        safe = np.where(missing, 0, modes)
        values = np.asarray(scalars, np.float64).clip(-1, 1) * 4 * np.asarray(self.stds)[safe]
        values += np.asarray(self.means)[safe]
        return np.where(missing, np.nan, values)

    def mixture_quantiles(self, levels: np.ndarray, clip: bool = True) -> np.ndarray:
        """Return the mixture's quantiles at `levels` in [0, 1], the mixture cut to [low, high] if `clip`.

        Without `clip` the mixture is cut where decoding can reach: each mode's mean +- 4 std.
        """
        bounds = (self.low, self.high) if clip else None
        return _mixture_quantiles(self.weights, self.means, self.stds, levels, bounds)

    def fit_marginal_map(self, generated: np.ndarray, points: int = 1001, clip: bool = True) -> None:
        """Learn a monotone map that gives the generator's numbers this column's mixture as marginal.

        `generated` are numbers the generator made (`values`, NaN where missing). The map sends the
        generator's q-quantile to the mixture's q-quantile for `points` levels of q, and interpolates
        between: each row keeps its rank, so the dependence between columns that the generator learnt is
        kept, while the column's own shape becomes the mixture's (a copula-style correction).
        """
        present = np.sort(generated[~np.isnan(generated)])
        if len(present) < 2 or present[0] == present[-1]:
            self.source, self.target = [], []
            return
        levels, source = _quantile_map(present, points)
        self.source = source.tolist()
        self.target = self.mixture_quantiles(levels, clip).tolist()

    def level_map(
        self, generated: np.ndarray, real: np.ndarray, rng: np.random.Generator, clip: bool = True
    ) -> tuple[list[float], list[float]]:
        """Return (source, target) of a map for the rows of one level of this column's `parent`.

        The same construction as `fit_marginal_map`, within the level: the generator's quantiles there go to
        the quantiles of a mixture fitted to the training numbers of the level, `real` (present values
        only). The targets are the mixture's quantiles, cut to the column's range: no training number is
        kept.
        """
        present = generated[~np.isnan(generated)]
        if len(present) < 2 or present.min() == present.max():
            return [], []
        levels, source = _quantile_map(present, LEVEL_MAP_POINTS)
        weights, means, stds = fit_mixture(real, rng, LEVEL_MIXTURE_ROWS)
        bounds = (self.low, self.high) if clip else None
        # The end knots go to the level's 0.25 % and 99.75 % quantiles, not to the ends of the range: one
        # level's extremes are not the column's (see `finish` for the rows beyond them).
        inner = levels.clip(0.5 / LEVEL_MAP_POINTS, 1 - 0.5 / LEVEL_MAP_POINTS)
        return source.tolist(), _mixture_quantiles(weights, means, stds, inner, bounds).tolist()

    def finish(
        self,
        values: np.ndarray,
        clip: bool = True,
        mapped: bool = True,
        parent_codes: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return numbers from `values()` as sampled ones: mapped, clipped to the range and rounded.

        `parent_codes` are the rows' codes in the `parent` column: rows at a level with a map of its own
        take that map instead of the column's. A row beyond the numbers its level's map was fitted on takes
        the column's map where that goes further out, so samples still reach the column's observed minimum
        and maximum; within a level the result is still monotone in the generated number.
        """
        raw = values
        if mapped and self.source:
            values = np.interp(values, self.source, self.target)  # NaN (missing) stays NaN
        if mapped and self.level_codes and parent_codes is not None:
            values = np.array(values, np.float64)
            maps = zip(self.level_codes, self.level_sources, self.level_targets, strict=True)
            for code, source, target in maps:
                rows = parent_codes == code
                made, own = raw[rows], np.interp(raw[rows], source, target)
                own = np.where(made > source[-1], np.fmax(own, values[rows]), own)
                values[rows] = np.where(made < source[0], np.fmin(own, values[rows]), own)
        return self.settle(values, clip)

    def settle(self, values: np.ndarray, clip: bool = True) -> np.ndarray:
        """Return mapped numbers clipped to the column's range (if `clip`) and rounded to its step."""
        if clip:
            values = values.clip(self.low, self.high)
        if self.step:
            values = np.round(values / self.step) * self.step
        return values

    def decode(
        self,
        scalars: np.ndarray,
        modes: np.ndarray,
        clip: bool = True,
        parent_codes: np.ndarray | None = None,
    ) -> pd.Series:
        return self.to_series(self.finish(self.values(scalars, modes), clip, parent_codes=parent_codes))

    def to_series(self, values: np.ndarray) -> pd.Series:
        """Return finished numbers (NaN = missing) as the column's own dtype: dates, integers or floats."""
        missing = np.isnan(values)
        if self.kind == "datetime":
            stamps = pd.to_datetime(np.round(values * NS_PER_S), unit="ns")
            return pd.Series(stamps, name=self.name).astype(self.dtype)
        series = pd.Series(values, name=self.name)
        if not missing.any() and self.dtype.startswith(("int", "uint", "Int", "UInt")):
            return series.astype(self.dtype)
        return series.astype("float64") if not self.dtype.startswith("Int") else series.astype(self.dtype)


def _resolution(values: np.ndarray, kind: str) -> float:
    """Return the step all `values` are multiples of: 1 for integers, a day or a second for datetimes."""
    if kind == "integer":
        return 1.0
    if kind == "datetime":
        for step in (86_400.0, 1.0):
            if np.allclose(values / step, np.round(values / step)):
                return step
    return 0.0


def fit_mixture(
    present: np.ndarray, rng: np.random.Generator, max_rows: int = MIXTURE_ROWS
) -> tuple[list[float], list[float], list[float]]:
    """Return (weights, means, stds) of a Bayesian Gaussian mixture fitted to the numbers `present`.

    At most MAX_MODES modes under a Dirichlet-process prior, on at most `max_rows` of the numbers (a
    random subset); modes lighter than MIN_MODE_WEIGHT are dropped. Fewer than two distinct numbers give one
    mode at their mean.
    """
    from sklearn.exceptions import ConvergenceWarning  # noqa: PLC0415  (slow imports)
    from sklearn.mixture import BayesianGaussianMixture  # noqa: PLC0415

    centre, scale = float(present.mean()), float(present.std()) or 1.0
    distinct = np.unique(present)
    if len(distinct) < 2:
        return [1.0], [centre], [1.0]
    subset = present if len(present) <= max_rows else rng.choice(present, max_rows, replace=False)
    mixture = BayesianGaussianMixture(
        n_components=min(MAX_MODES, len(distinct)),
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=0.001,
        max_iter=100,
        covariance_type="diag",  # one feature: the same fit as "full", without its per-mode loops
        random_state=int(rng.integers(2**31 - 1)),
    )
    with warnings.catch_warnings():  # a mixture that stops at max_iter is still a usable fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        mixture.fit(((subset - centre) / scale).reshape(-1, 1))
    keep = mixture.weights_ > MIN_MODE_WEIGHT
    weights = mixture.weights_[keep]
    means = mixture.means_[keep, 0] * scale + centre
    stds = (np.sqrt(mixture.covariances_[keep, 0]) * scale).clip(min=1e-6 * scale)
    return (weights / weights.sum()).tolist(), means.tolist(), stds.tolist()


def _mixture_quantiles(
    weights: Sequence[float],
    means: Sequence[float],
    stds: Sequence[float],
    levels: np.ndarray,
    bounds: tuple[float, float] | None,
) -> np.ndarray:
    """Return the quantiles at `levels` of a Gaussian mixture cut to `bounds` (None: each mean +- 4 std).

    Levels 0 and 1 go to the ends of the cut, so a map's extreme knots reach the column's observed minimum
    and maximum.
    """
    from scipy.special import ndtr  # noqa: PLC0415  (the normal CDF; scipy comes with scikit-learn)

    means_, stds_ = np.asarray(means), np.asarray(stds)
    low, high = bounds if bounds is not None else ((means_ - 4 * stds_).min(), (means_ + 4 * stds_).max())
    if high <= low:
        return np.full(len(levels), low)
    grid = np.linspace(low, high, 8193)
    cdf = (np.asarray(weights) * ndtr((grid[:, None] - means_) / stds_)).sum(axis=1)
    cdf = (cdf - cdf[0]) / max(cdf[-1] - cdf[0], 1e-300)
    return np.interp(levels, cdf, grid)


def _explained(values: np.ndarray, codes: np.ndarray) -> float:
    """Return the share of the variance of `values` that the groups `codes` explain, adjusted for the number
    of groups (epsilon squared: the between-group sum of squares less what as many random groups would
    explain, over the total); 0 where it is undefined."""
    n, total = len(values), float(((values - values.mean()) ** 2).sum()) if len(values) else 0.0
    counts = np.bincount(codes)
    groups = int((counts > 0).sum())
    if total <= 0 or groups < 2 or n <= groups:
        return 0.0
    sums = np.bincount(codes, weights=values)
    between = float((sums[counts > 0] ** 2 / counts[counts > 0]).sum() - sums.sum() ** 2 / n)
    return (between - (groups - 1) * (total - between) / (n - groups)) / total


def _parent(real: np.ndarray, categorical: dict[int, np.ndarray]) -> int | None:
    """Return the index of the categorical column that explains most of the variance of the numbers `real`
    (adjusted eta squared, at least LEVEL_MAP_MIN_EXPLAINED), or None. `categorical` maps each categorical
    column's index to its training codes."""
    present = ~np.isnan(real)
    explained = {j: _explained(real[present], codes[present]) for j, codes in categorical.items()}
    best = max(explained, key=explained.__getitem__, default=None)
    return best if best is not None and explained[best] >= LEVEL_MAP_MIN_EXPLAINED else None


def _quantile_map(generated: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (levels, quantiles) of `generated` at `points` levels, dropping knots that do not increase."""
    levels = np.linspace(0, 1, points)
    source = np.quantile(generated, levels)
    keep = np.concatenate([[True], np.diff(source) > 0])  # np.interp needs increasing knots
    return levels[keep], source[keep]


@dataclass
class CategoricalColumn:
    """A categorical or boolean column: one-hot over its levels (missing and "other" are levels too)."""

    name: str
    kind: str
    dtype: str
    levels: list[Any] = field(default_factory=list)  # most frequent first; None stands for missing
    frequencies: list[float] = field(default_factory=list)
    pooled: list[Any] = field(default_factory=list)  # the rare levels behind "other"
    pooled_frequencies: list[float] = field(default_factory=list)
    offsets: list[float] = field(default_factory=list)  # added to the generator's logits (`fit_offsets`)

    OTHER = "__other__"

    def spans(self) -> list[Span]:
        return [Span(self.name, "softmax", len(self.levels))]

    def fit(self, series: pd.Series, max_categories: int) -> None:
        counts = series.astype(object).where(series.notna(), None).value_counts(dropna=False)
        counts = counts.sort_values(ascending=False, kind="stable")
        levels = [None if _is_missing(v) else _plain(v) for v in counts.index]
        shares = (counts.to_numpy() / counts.sum()).tolist()
        if len(levels) > max_categories:
            keep = max_categories - 1
            self.pooled, self.pooled_frequencies = levels[keep:], shares[keep:]
            levels, shares = [*levels[:keep], self.OTHER], [*shares[:keep], float(sum(shares[keep:]))]
        self.levels, self.frequencies = levels, shares

    def encode(self, series: pd.Series) -> np.ndarray:
        index = {level: i for i, level in enumerate(self.levels)}
        other = index.get(self.OTHER, -1)
        codes = [index.get(None if _is_missing(v) else _plain(v), other) for v in series.astype(object)]
        return np.asarray(codes, np.int64)

    def fit_offsets(self, logits: np.ndarray) -> None:
        """Learn per-level offsets to the generator's logits that give the levels their training frequencies.

        `logits` (rows, levels) are the generator's raw outputs for this column on rows drawn as `sample`
        draws them; a sampled level is a draw from the softmax of a row's logits (the Gumbel-max trick). A
        briefly trained GAN gets these frequencies a few tens of percent wrong for some levels (diamonds'
        "Ideal" cut came out 1.33 times as often as in the data after 30 epochs). The offsets b that make the
        mean of softmax(logits + b) over the rows equal the frequencies are found by Sinkhorn's scaling, each
        step adding log(frequency / mean share) to b. They move probability mostly in the rows where the
        generator was unsure between levels; a row it is sure of keeps its level.
        """
        target = np.asarray(self.frequencies, np.float64)
        weights = np.array(logits, np.float64)  # (rows, levels), exp'd in place; offsets scale its columns
        weights -= weights.max(axis=1, keepdims=True)
        np.exp(weights, out=weights)
        offsets = np.zeros(len(target))
        for _ in range(OFFSET_ITERATIONS):
            scale = np.exp(offsets)
            # each level's mean softmax share over the rows, as two products (no rows x levels temporary)
            share = scale * (weights.T @ (1.0 / (weights @ scale))) / len(weights)
            if np.abs(share - target).max() < OFFSET_TOLERANCE:
                break
            step = np.log(target) - np.log(np.maximum(share, 1e-300))
            offsets = (offsets + step.clip(-OFFSET_STEP, OFFSET_STEP)).clip(-OFFSET_LIMIT, OFFSET_LIMIT)
        self.offsets = offsets.tolist()

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.Series:
        values = np.empty(len(codes), dtype=object)
        for code, level in enumerate(self.levels):
            values[codes == code] = level
        if self.pooled:
            chosen = codes == self.levels.index(self.OTHER)
            share = np.asarray(self.pooled_frequencies) / sum(self.pooled_frequencies)
            picks = rng.choice(len(self.pooled), int(chosen.sum()), p=share)
            values[chosen] = [self.pooled[i] for i in picks]
        series = pd.Series(values, name=self.name)
        if series.notna().all() and self.dtype != "object":
            try:
                return series.astype(self.dtype)
            except (TypeError, ValueError):
                return series
        return series


Column = NumericColumn | CategoricalColumn


def detect_kind(series: pd.Series, discrete: bool | None) -> str:
    """Return the kind of `series`; `discrete` forces categorical (True) or numeric (False), None = auto."""
    name = series.name
    present = series.dropna()
    if present.empty:
        raise UserError(f"column {name!r}: every value is missing; drop it or fill it")
    # only an object or category column can hold Python booleans among other values
    is_object = pd.api.types.is_object_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype)
    if pd.api.types.is_bool_dtype(series) or (
        is_object and present.map(lambda v: isinstance(v, bool | np.bool_)).all()
    ):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        if discrete:
            raise UserError(f"--discrete: column {name!r} holds dates; dates cannot be discrete here")
        return "datetime"
    if pd.api.types.is_numeric_dtype(series):
        integral = bool(np.all(np.mod(present.to_numpy(np.float64), 1) == 0))
        if discrete or (discrete is None and present.nunique() <= AUTO_DISCRETE_LEVELS):
            return "categorical"
        return "integer" if integral else "continuous"
    types = {type(v) for v in present}
    text = {t for t in types if issubclass(t, str)}
    numbers = {t for t in types if issubclass(t, int | float | np.number) and not issubclass(t, bool)}
    if text and numbers:
        raise UserError(f"column {name!r} mixes numbers and text; make it one type")
    if text and not discrete:
        # A CSV column read as text where most values are numbers and a few are not ("12", "7", "n/a"):
        # almost always a number column with stray entries. Say so, unless the user called it discrete.
        parsed = pd.to_numeric(present.astype(str), errors="coerce")
        numeric_share = float(parsed.notna().mean())
        if 0.5 <= numeric_share < 1.0:
            stray = present[parsed.isna()].astype(str).iloc[0]
            raise UserError(
                f"column {name!r} mixes numbers and text ({numeric_share:.0%} numbers, also {stray!r}); "
                f"clean it, or list it in --discrete to treat every value as a category"
            )
    if discrete is False:
        raise UserError(f"column {name!r} holds text; it can only be discrete")
    return "categorical"


def column_kinds(table: pd.DataFrame, discrete_columns: str | Sequence[str]) -> dict[str, str]:
    """Return {column: kind} of `table`; `discrete_columns` is "auto" or the names to treat as categorical."""
    if isinstance(discrete_columns, str):
        if discrete_columns != "auto":
            raise UserError(f'discrete_columns: give "auto" or a list of names, not {discrete_columns!r}')
        forced: set[str] | None = None
    else:
        forced = set(discrete_columns)
        unknown = sorted(forced - set(table.columns))
        if unknown:
            raise UserError(f"discrete_columns: no column {unknown[0]!r} (columns: {list(table.columns)})")
    return {
        name: detect_kind(table[name], None if forced is None else (True if name in forced else None))
        for name in table.columns
    }


class TableTransformer:
    """The reversible map between a DataFrame and (scalars, codes) arrays, and the output spans."""

    def __init__(self, columns: Sequence[Column]):
        self.columns = list(columns)

    @classmethod
    def fit(
        cls,
        table: pd.DataFrame,
        kinds: Mapping[str, str],
        max_categories: int,
        rng: np.random.Generator,
    ) -> TableTransformer:
        """Return the transform of `table`, whose columns have `kinds` (from `column_kinds`)."""
        columns: list[Column] = []
        for name in table.columns:
            series, kind, dtype = table[name], kinds[name], str(table[name].dtype)
            if kind in ("categorical", "boolean"):
                column: Column = CategoricalColumn(str(name), kind, dtype)
                column.fit(series, max_categories)
            else:
                column = NumericColumn(str(name), kind, dtype)
                column.fit(series, rng)
            columns.append(column)
        return cls(columns)

    @property
    def kinds(self) -> dict[str, str]:
        return {column.name: column.kind for column in self.columns}

    def spans(self) -> list[Span]:
        return [span for column in self.columns for span in column.spans()]

    @property
    def width(self) -> int:
        return sum(span.width for span in self.spans())

    def categorical(self) -> list[tuple[int, CategoricalColumn]]:
        """Return (index among the code columns, column) for each categorical column (the conditions)."""
        return [(i, column) for i, column in enumerate(self.columns) if isinstance(column, CategoricalColumn)]

    def encode(self, table: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return scalars (N, numeric columns) float32 and codes (N, columns) int64, one code per column."""
        scalars, codes = [], []
        for column in self.columns:
            if isinstance(column, NumericColumn):
                scalar, mode = column.encode(table[column.name], rng)
                scalars.append(scalar)
                codes.append(mode)
            else:
                codes.append(column.encode(table[column.name]))
        n = len(table)
        scalar_array = np.stack(scalars, axis=1) if scalars else np.zeros((n, 0), np.float32)
        return scalar_array, np.stack(codes, axis=1)

    def decode(
        self, scalars: np.ndarray, codes: np.ndarray, rng: np.random.Generator, clip: bool = True
    ) -> pd.DataFrame:
        out, s = {}, 0
        for j, column in enumerate(self.columns):
            if isinstance(column, NumericColumn):
                parent = codes[:, self.index(column.parent)] if column.parent else None
                out[column.name] = column.decode(scalars[:, s], codes[:, j], clip, parent)
                s += 1
            else:
                out[column.name] = column.decode(codes[:, j], rng)
        return pd.DataFrame(out)

    def index(self, name: str) -> int:
        """Return the position of the column called `name`."""
        return next(j for j, column in enumerate(self.columns) if column.name == name)

    def fit_marginal_maps(
        self,
        table: pd.DataFrame | None,
        scalars: np.ndarray,
        codes: np.ndarray,
        clip: bool = True,
        rng: np.random.Generator | None = None,
    ) -> list[str]:
        """Fit each numeric column's marginal map on generated rows; keep it where it measures better.

        A map is kept only if it brings the generated numbers closer to the column of `table` (the training
        data) by the Kolmogorov-Smirnov statistic. The mixture is a poor model of some columns (an integer
        column with a spike at 0 and a long tail, say), and there mapping to it would make the shape worse.
        With `table` None every map is kept, without a look at the data (the private fit does this).

        With `table` and `rng`, a numeric column also gets maps within the levels of its parent column, the
        categorical column that explains most of its variance (see `_parent` and `_fit_level_maps`).
        Return the names of the columns that keep a marginal map.
        """
        by_level = table is not None and rng is not None
        categorical = {j: c.encode(table[c.name]) for j, c in self.categorical()} if by_level else {}
        kept, s = [], 0
        for j, column in enumerate(self.columns):
            if not isinstance(column, NumericColumn):
                continue
            generated = column.values(scalars[:, s], codes[:, j])
            s += 1
            column.fit_marginal_map(generated, clip=clip)
            column.parent, column.level_codes, column.level_sources, column.level_targets = "", [], [], []
            if table is None:
                kept += [column.name] if column.source else []
                continue
            real = column.to_float(table[column.name])
            if column.source:
                present, made = real[~np.isnan(real)], generated[~np.isnan(generated)]
                plain = ks_statistic(present, column.finish(made, clip, mapped=False))
                if ks_statistic(present, column.finish(made, clip)) >= plain:
                    column.source, column.target = [], []
                else:
                    kept.append(column.name)
            parent = _parent(real, categorical)
            if parent is not None and rng is not None:
                real_codes = categorical[parent]
                self._fit_level_maps(column, parent, real, real_codes, generated, codes[:, parent], clip, rng)
        return kept

    def _fit_level_maps(
        self,
        column: NumericColumn,
        parent: int,
        real: np.ndarray,
        real_codes: np.ndarray,
        generated: np.ndarray,
        generated_codes: np.ndarray,
        clip: bool,
        rng: np.random.Generator,
    ) -> None:
        """Give `column` maps of its own for the most frequent levels of the categorical column `parent`.

        A GAN gets a numeric column's distribution within each level of a categorical column less right than
        the column's overall one: trained briefly on diamonds, the depths of its "Ideal" rows spread twice as
        wide as the real ones. Each level's map is fitted like the marginal map, on the generated rows of that
        level and a mixture fitted to the training numbers of that level (`NumericColumn.level_map`), and is
        kept if it brings those rows closer to the level's training numbers (Kolmogorov-Smirnov) than the
        column's own map does. Levels with fewer than LEVEL_MAP_MIN_ROWS numbers, training or generated,
        keep the column's map.
        """
        levels = len(self.columns[parent].levels)  # type: ignore[union-attr]
        for code in range(min(levels, LEVEL_MAP_MAX_LEVELS)):
            real_level = real[(real_codes == code) & ~np.isnan(real)]
            made = generated[(generated_codes == code) & ~np.isnan(generated)]
            if min(len(real_level), len(made)) < LEVEL_MAP_MIN_ROWS:
                continue
            source, target = column.level_map(made, real_level, rng, clip)
            if not source:
                continue
            own = ks_statistic(real_level, column.settle(np.interp(made, source, target), clip))
            if own < ks_statistic(real_level, column.finish(made, clip)):
                column.level_codes.append(code)
                column.level_sources.append(source)
                column.level_targets.append(target)
        column.parent = self.columns[parent].name if column.level_codes else ""

    def mapped(self) -> list[str]:
        """Return the names of the numeric columns that have a marginal map."""
        return [c.name for c in self.columns if isinstance(c, NumericColumn) and c.source]

    def level_mapped(self) -> dict[str, str]:
        """Return {numeric column: its parent} for the columns with maps within the parent's levels."""
        return {c.name: c.parent for c in self.columns if isinstance(c, NumericColumn) and c.parent}

    def to_json(self) -> list[dict[str, Any]]:
        return [{"type": type(c).__name__, **c.__dict__} for c in self.columns]

    @classmethod
    def from_json(cls, records: list[dict[str, Any]]) -> TableTransformer:
        types = {"NumericColumn": NumericColumn, "CategoricalColumn": CategoricalColumn}
        columns = []
        for record in records:
            record = dict(record)
            columns.append(types[record.pop("type")](**record))
        return cls(columns)

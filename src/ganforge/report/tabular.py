"""The HTML report of a TabularGAN: quality scores, marginal and pair plots, privacy, ML efficacy."""

from __future__ import annotations

import math
import time
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import ganforge  # noqa: E402
from ganforge.engine.checkpoint import write_text_atomic  # noqa: E402
from ganforge.errors import UserError  # noqa: E402
from ganforge.metrics.tabular import TabularQuality  # noqa: E402
from ganforge.report.html import STYLE  # noqa: E402
from ganforge.report.images import png_bytes  # noqa: E402
from ganforge.report.markup import figure, img, note  # noqa: E402

REAL, SYNTHETIC = "#1f77b4", "#ff7f0e"
MAX_MARGINALS = 24  # columns drawn; wider tables show the lowest-scoring ones
MAX_LEVELS = 12  # bars per categorical plot; the rest are summed into "other"
PLOT_ROWS = 5_000  # rows drawn in a scatter


def write_tabular_report(
    model_dir: str | Path,
    real: str | Path | pd.DataFrame,
    holdout: str | Path | pd.DataFrame | None = None,
    target: str | None = None,
    n: int | None = None,
    out: str | Path | None = None,
    seed: int = 0,
) -> Path:
    """Write the report of the model in `model_dir` against the `real` table; return the HTML path.

    `holdout` (real rows the model never saw) enables the privacy section and, with `target`, the
    machine-learning efficacy section (train on real or synthetic, test on the holdout).
    """
    from ganforge.data.tables import load_table  # noqa: PLC0415
    from ganforge.metrics.tabular import quality  # noqa: PLC0415
    from ganforge.tabular import TabularGAN  # noqa: PLC0415

    model = TabularGAN.load(model_dir)
    real_table = _aligned(load_table(real), model.columns_, "--real")
    holdout_table = (
        _aligned(load_table(holdout), model.columns_, "--holdout") if holdout is not None else None
    )
    if target is not None and target not in model.columns_:
        raise UserError(f"--target: no column {target!r} (columns: {', '.join(model.columns_)})")
    if n is not None and n <= 0:
        raise UserError(f"--n: ask for at least 1 row, got {n}")
    synthetic = model.sample(n or len(real_table), random_state=seed)
    kinds = model.kinds_
    scores = quality(real_table, synthetic, kinds)
    sections = [
        ("summary", "Model", _model_section(model, len(real_table), len(synthetic))),
        ("quality", "Quality", _quality_section(scores)),
        (
            "marginals",
            "Columns: real vs synthetic",
            _marginals(real_table, synthetic, kinds, scores.per_column),
        ),
        ("pairs", "Pairs: real vs synthetic", _pairs(real_table, synthetic, kinds, scores.per_pair)),
        ("privacy", "Privacy", _privacy_section(real_table, synthetic, holdout_table, kinds)),
        (
            "efficacy",
            "Machine-learning efficacy",
            _efficacy(real_table, synthetic, holdout_table, target, kinds),
        ),
    ]
    path = Path(out) if out is not None else Path(model_dir) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"TabularGAN report: {Path(model_dir).name}"
    nav = "".join(f'<a href="#{key}">{escape(heading)}</a>' for key, heading, _ in sections)
    body = "\n".join(f'<section id="{k}"><h2>{escape(h)}</h2>\n{c}\n</section>' for k, h, c in sections)
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body><main>\n"
        f"<header><h1>{escape(title)}</h1><nav>{nav}</nav></header>\n{body}\n"
        f"<footer><p>Written by ganforge {escape(ganforge.__version__)} on "
        f"{escape(time.strftime('%Y-%m-%d %H:%M'))}.</p></footer>\n</main></body></html>\n"
    )
    write_text_atomic(path, page)
    return path


def _aligned(table: pd.DataFrame, columns: list[str], flag: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UserError(f"{flag}: the table has no column {missing[0]!r}, which the model was fitted on")
    return table[columns]


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _model_section(model: ganforge.tabular.TabularGAN, n_real: int, n_synthetic: int) -> str:
    kinds = ", ".join(f"{name} ({kind})" for name, kind in model.kinds_.items())
    rows = [
        ("training rows", f"{model.n_rows_:,}"),
        ("columns", kinds),
        ("epochs", str(model.epochs)),
        ("fit time", f"{model.fit_seconds_:.1f} s"),
        ("rows compared", f"{n_real:,} real, {n_synthetic:,} synthetic"),
    ]
    if getattr(model, "dp_epsilon_spent_", None) is not None:
        rows.append(
            ("differential privacy", f"epsilon {model.dp_epsilon_spent_:.2f}, delta {model.dp_delta_:.2g}")
        )
    else:
        rows.append(("differential privacy", "off"))
    return _table(rows)


def _quality_section(scores: TabularQuality) -> str:
    rows = [
        ("column shapes", f"{scores.column_shapes:.3f}"),
        ("pair trends", f"{scores.pair_trends:.3f}"),
        ("overall", f"{scores.overall:.3f}"),
    ]
    text = (
        "Column shape: 1 - Kolmogorov-Smirnov distance for numbers, 1 - total variation distance for "
        "categories. Pair trend: 1 - |correlation difference| / 2 for two numbers, contingency similarity "
        "otherwise. 1 means the same as the real table."
    )
    per_column = _table([(name, f"{value:.3f}") for name, value in scores.per_column.items()])
    return _table(rows) + f"<p>{escape(text)}</p><h3>Per column</h3>" + per_column


def _marginals(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str], scores: dict) -> str:
    names = sorted(real.columns, key=lambda c: scores.get(c, 1.0))[:MAX_MARGINALS]
    names = [c for c in real.columns if c in names]
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        kind = kinds[name]
        if kind in ("categorical", "boolean"):
            counts_real = real[name].astype(str).value_counts(normalize=True)
            counts_syn = synthetic[name].astype(str).value_counts(normalize=True)
            levels = list(counts_real.index[:MAX_LEVELS])
            x = np.arange(len(levels))
            ax.bar(x - 0.2, [counts_real.get(v, 0) for v in levels], 0.4, color=REAL, label="real")
            ax.bar(x + 0.2, [counts_syn.get(v, 0) for v in levels], 0.4, color=SYNTHETIC, label="synthetic")
            ax.set_xticks(x, [v[:10] for v in levels], rotation=45, fontsize=7)
        else:
            a, b = _numbers(real[name], kind), _numbers(synthetic[name], kind)
            low, high = np.nanmin(a), np.nanmax(a)
            bins = np.linspace(low, high, 31) if high > low else 10
            ax.hist(a[~np.isnan(a)], bins=bins, density=True, alpha=0.5, color=REAL, label="real")
            ax.hist(b[~np.isnan(b)], bins=bins, density=True, alpha=0.5, color=SYNTHETIC, label="synthetic")
        ax.set_title(f"{name} ({scores.get(name, math.nan):.2f})", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    picture = png_bytes(fig, dpi=80)
    plt.close(fig)
    caption = (
        "Each column's distribution, real (blue) and synthetic (orange); the title holds its shape score."
    )
    return figure(img(picture, "column marginals"), caption)


def _numbers(series: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        stamps = pd.to_datetime(series)
        return np.where(stamps.isna(), np.nan, stamps.astype("int64") / 86_400e9)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def _pairs(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str], scores: dict) -> str:
    numeric = [c for c in real.columns if kinds[c] in ("continuous", "integer", "datetime")]
    pairs = [(a, b) for (a, b) in scores if a in numeric and b in numeric]
    if not pairs:
        return note("No two numeric columns to draw against each other.")
    real_corr = {(a, b): abs(_corr(real, a, b, kinds)) for a, b in pairs}
    shown = sorted(pairs, key=lambda p: -real_corr[p])[:3]
    fig, axes = plt.subplots(len(shown), 2, figsize=(7, 3 * len(shown)), squeeze=False)
    for row, (a, b) in enumerate(shown):
        for col, (table, colour, label) in enumerate(
            [(real, REAL, "real"), (synthetic, SYNTHETIC, "synthetic")]
        ):
            part = table.head(PLOT_ROWS)
            ax = axes[row, col]
            ax.scatter(_numbers(part[a], kinds[a]), _numbers(part[b], kinds[b]), s=4, alpha=0.4, color=colour)
            ax.set_xlabel(a, fontsize=8)
            ax.set_ylabel(b, fontsize=8)
            ax.set_title(f"{label}: pair trend {scores[(a, b)]:.2f}" if col else label, fontsize=9)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    picture = png_bytes(fig, dpi=80)
    plt.close(fig)
    caption = "The most correlated numeric pairs of the real table, real (left) and synthetic (right)."
    return figure(img(picture, "pair plots"), caption)


def _corr(table: pd.DataFrame, a: str, b: str, kinds: dict[str, str]) -> float:
    x, y = _numbers(table[a], kinds[a]), _numbers(table[b], kinds[b])
    both = ~np.isnan(x) & ~np.isnan(y)
    if both.sum() < 3 or np.std(x[both]) == 0 or np.std(y[both]) == 0:
        return 0.0
    return float(np.corrcoef(x[both], y[both])[0, 1])


def _privacy_section(
    real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None, kinds: dict[str, str]
) -> str:
    if holdout is None:
        return note(
            "Give --holdout (real rows the model never saw) to measure distances to the closest record and "
            "a membership-inference attack."
        )
    from ganforge.metrics.privacy import distance_to_closest_record, membership_inference_auc  # noqa: PLC0415

    dcr = distance_to_closest_record(real, synthetic, holdout, kinds)
    auc = membership_inference_auc(real, holdout, synthetic, kinds)
    rows = [
        (
            "distance to closest training row, synthetic (median / 5th pct)",
            f"{dcr.synthetic_median:.4f} / {dcr.synthetic_p5:.4f}",
        ),
        ("the same for holdout rows (reference)", f"{dcr.holdout_median:.4f} / {dcr.holdout_p5:.4f}"),
        (
            "nearest-neighbour distance ratio, synthetic / holdout",
            f"{dcr.synthetic_nndr:.3f} / {dcr.holdout_nndr:.3f}",
        ),
        ("synthetic rows equal to a training row", f"{dcr.exact_copies} of {dcr.n_synthetic}"),
        ("synthetic rows closer to training than to holdout", f"{dcr.closer_to_train_share:.1%} (50% ideal)"),
        ("membership-inference AUC (distance attacker)", f"{auc:.3f} (0.5 = no leak)"),
    ]
    text = (
        "Distances are Gower distances in [0, 1]. Synthetic rows much closer to the training rows than fresh "
        "holdout rows are, or an attack AUC well above 0.5, would mean the model copies its training rows."
    )
    return _table(rows) + f"<p>{escape(text)}</p>"


def _efficacy(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None,
    target: str | None,
    kinds: dict[str, str],
) -> str:
    if holdout is None or target is None:
        return note(
            "Give --holdout and --target to train a model on synthetic rows and test it on real ones."
        )
    from ganforge.metrics.tabular import ml_efficacy  # noqa: PLC0415

    result = ml_efficacy(real, holdout, target, kinds, synthetic)
    rows = [
        ("task", f"{result.task} of {target}, {result.metric} on the holdout rows"),
        ("trained on real rows", f"{result.real_score:.3f}"),
        ("trained on synthetic rows", f"{result.synthetic_score:.3f}"),
        ("ratio", f"{result.ratio:.1%}"),
    ]
    return _table(rows)

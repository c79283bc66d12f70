"""The training-curve picture of a run, drawn from its metrics.jsonl."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

D_OUTPUTS = ("D(x)", "D(G(z))")  # mean discriminator outputs as probabilities, when the recipe logs them


def read_metrics(path: Path) -> list[dict[str, float]]:
    """Return the rows of a metrics.jsonl (an empty list when there is none); unreadable lines are skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a run killed mid-write leaves half a line
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows


def _series(rows: list[dict[str, float]], key: str) -> list[float]:
    """Return the values of `key` by row, NaN where missing or not finite (matplotlib leaves gaps there)."""
    values = []
    for row in rows:
        value = row.get(key)
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        values.append(float(value) if ok else float("nan"))
    return values


def curves_figure(rows: list[dict[str, float]], width: float = 11.0) -> Figure | None:
    """Return a figure of the losses and, if logged, D's mean outputs with the 0.5 equilibrium; None if
    there are no rows."""
    if not rows:
        return None
    from matplotlib.figure import Figure  # no pyplot: no global figure registry, no backend switch

    steps = [row["step"] for row in rows]
    loss_keys = sorted({key for row in rows for key in row if key.startswith("loss_")})
    output_keys = [key for key in D_OUTPUTS if any(key in row for row in rows)]
    figure = Figure(figsize=(width, 3.8), dpi=100)
    losses, outputs = figure.subplots(1, 2) if output_keys else (figure.subplots(1, 1), None)
    for key in loss_keys:
        losses.plot(steps, _series(rows, key), label=key)
    losses.set_xlabel("step")
    losses.set_title("losses")
    if loss_keys:
        losses.legend()
    if outputs is not None:
        for key in output_keys:
            outputs.plot(steps, _series(rows, key), label=key)
        outputs.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="equilibrium (0.5)")
        outputs.set_ylim(0, 1)
        outputs.set_xlabel("step")
        outputs.set_title("mean discriminator output (probability of real)")
        outputs.legend()
    figure.tight_layout()
    return figure


def plot_curves(metrics_path: Path, out_path: Path) -> bool:
    """Draw losses and D's mean outputs (as probabilities, with the 0.5 equilibrium); False if no data."""
    figure = curves_figure(read_metrics(metrics_path))
    if figure is None:
        return False
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path)
    return True

"""The training-curve picture of a run, drawn from its metrics.jsonl."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

D_OUTPUTS = ("D(x)", "D(G(z))")  # mean discriminator outputs as probabilities, when the recipe logs them


def _read_lines(path: Path) -> list[dict]:
    """Return every JSON object with a step in a metrics.jsonl, in file order; bad lines are skipped."""
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


def is_event(row: dict) -> bool:
    """Return whether a metrics.jsonl line is a monitor's alert or an event (a rollback), not stats."""
    return "alert" in row or "event" in row


def read_metrics(path: Path) -> list[dict[str, float]]:
    """Return the stats rows of a metrics.jsonl (an empty list when there is none), leaving out alert and
    event lines (see `read_events`); unreadable lines are skipped."""
    return [row for row in _read_lines(path) if not is_event(row)]


def read_events(path: Path) -> list[dict]:
    """Return the alert lines ({"step", "alert", "message"}) and event lines ({"step", "event", ...}) of a
    metrics.jsonl, in the order they were written."""
    return [row for row in _read_lines(path) if is_event(row)]


def _series(rows: list[dict[str, float]], key: str) -> list[float]:
    """Return the values of `key` by row, NaN where missing or not finite (matplotlib leaves gaps there)."""
    values = []
    for row in rows:
        value = row.get(key)
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        values.append(float(value) if ok else float("nan"))
    return values


def curves_figure(
    rows: list[dict[str, float]], width: float = 11.0, events: list[dict] | None = None
) -> Figure | None:
    """Return a figure of the losses and, if logged, D's mean outputs with the 0.5 equilibrium; alert lines
    among `events` are marked by dotted red lines at their steps. None if there are no rows."""
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
    alert_steps = sorted({event["step"] for event in events or () if "alert" in event})
    for index, step in enumerate(alert_steps):
        for axes in (losses, outputs) if outputs is not None else (losses,):
            label = "monitor alert" if index == 0 and axes is losses else None
            axes.axvline(step, color="tab:red", linestyle=":", linewidth=1, label=label)
    losses.set_xlabel("step")
    losses.set_title("losses")
    if loss_keys or alert_steps:
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
    """Draw losses and D's mean outputs (as probabilities, with the 0.5 equilibrium) and the monitors' alerts;
    False if no data."""
    figure = curves_figure(read_metrics(metrics_path), events=read_events(metrics_path))
    if figure is None:
        return False
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path)
    return True

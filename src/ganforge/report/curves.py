"""The loss-curve picture of a run, drawn from its metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(metrics_path: Path, out_path: Path) -> bool:
    """Draw losses and D's mean outputs (as probabilities, with the 0.5 equilibrium); False if no data."""
    rows = read_metrics(metrics_path)
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in rows]
    figure, (losses, outputs) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for key in sorted({k for row in rows for k in row if k.startswith("loss_")}):
        losses.plot(steps, [row.get(key, float("nan")) for row in rows], label=key)
    losses.set_xlabel("step")
    losses.set_title("losses")
    losses.legend()
    for key in ("D(x)", "D(G(z))"):
        if any(key in row for row in rows):
            outputs.plot(steps, [row.get(key, float("nan")) for row in rows], label=key)
    outputs.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="equilibrium")
    outputs.set_ylim(0, 1)
    outputs.set_xlabel("step")
    outputs.set_title("mean discriminator output (probability of real)")
    outputs.legend()
    figure.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path)
    plt.close(figure)
    return True

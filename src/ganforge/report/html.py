"""A one-page HTML report of a run: settings, samples over time, curves and the last metrics."""

from __future__ import annotations

import html
from pathlib import Path

from ganforge.report.curves import read_metrics


def write_report(run_dir: Path, title: str = "ganforge run") -> Path:
    """Write `report.html` in `run_dir` from what the run folder holds; return its path."""
    rows = read_metrics(run_dir / "metrics.jsonl")
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>Run folder: <code>{html.escape(str(run_dir))}</code></p>"]
    if grids:
        parts.append(f"<h2>Samples at step {int(grids[-1].stem.split('_')[1])} (fixed noise)</h2>")
        parts.append(
            f'<img src="samples/{grids[-1].name}" style="max-width:512px;image-rendering:pixelated">'
        )
    if (run_dir / "loss_curve.png").is_file():
        parts.append('<h2>Training curves</h2><img src="loss_curve.png" style="max-width:100%">')
    if rows:
        last = rows[-1]
        cells = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>"
            for k, v in last.items()
            if isinstance(v, (int, float))
        )
        parts.append(f"<h2>Last logged metrics</h2><table>{cells}</table>")
    if len(grids) > 1:
        strip = "".join(
            f'<figure><img src="samples/{g.name}" width="160"><figcaption>{g.stem}</figcaption></figure>'
            for g in grids
        )
        parts.append(f'<h2>Progress</h2><div style="display:flex;flex-wrap:wrap;gap:8px">{strip}</div>')
    if (run_dir / "config.yaml").is_file():
        parts.append(f"<h2>Config</h2><pre>{html.escape((run_dir / 'config.yaml').read_text())}</pre>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 12px}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    path = run_dir / "report.html"
    path.write_text(page)
    return path

"""A run's report: one self-contained HTML page (pictures embedded as data: URIs, CSS inline, no scripts).

Sections, in order: real vs generated samples, training curves, metrics with their manifests, nearest
training images and latent interpolation (image data), progress over training, and the config.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path

import numpy as np
import torch

import ganforge
from ganforge.data import TensorData
from ganforge.errors import UserError
from ganforge.report import panels
from ganforge.report.markup import note
from ganforge.report.run import RunContents

log = logging.getLogger("ganforge")

REPORT_FILE = "report.html"

SECTIONS: list[tuple[str, str, Callable[[RunContents], str | None]]] = [  # (id, heading, builder)
    ("samples", "Real vs generated", panels.real_vs_generated),
    ("curves", "Training curves", panels.training_curves),
    ("metrics", "Metrics", panels.metrics_table),
    ("neighbours", "Nearest training images", panels.nearest_training_images),
    ("interpolation", "Latent interpolation", panels.latent_interpolation),
    ("progress", "Progress", panels.progress),
    ("config", "Config", panels.config_text),
]

STYLE = """
body { margin: 0; background: #f3f4f6; color: #1f2328; line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 28px 32px 40px; background: #fff; box-sizing: border-box;
  min-height: 100vh; }
h1 { font-size: 1.8em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 36px 0 12px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.05em; margin: 20px 0 8px; }
.summary { font-size: 1.05em; margin: 0; }
.path, .small, footer { color: #57606a; font-size: 0.9em; }
nav { margin: 12px 0 0; font-size: 0.92em; }
nav a { color: #0969da; text-decoration: none; margin-right: 14px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88em; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px;
  overflow-x: auto; line-height: 1.35; }
img { max-width: 100%; height: auto; vertical-align: top; }
img.pixels { image-rendering: pixelated; }
figure { margin: 0; }
figcaption, .caption { color: #57606a; font-size: 0.9em; margin-top: 6px; max-width: 820px; }
.row { display: flex; flex-wrap: wrap; gap: 20px 28px; align-items: flex-start; }
.row.progress { gap: 16px; }
.note { color: #57606a; background: #f6f8fa; border-left: 3px solid #d0d7de; padding: 8px 12px;
  margin: 10px 0; }
table { border-collapse: collapse; font-size: 0.93em; }
th, td { border: 1px solid #d0d7de; padding: 6px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.value { display: flex; justify-content: space-between; gap: 14px; }
.key { color: #57606a; }
.pair { white-space: nowrap; }
pre.config { columns: 3 260px; column-gap: 28px; }
pre.config .block { display: block; break-inside: avoid; }
tr.manifest td { border-top: none; padding: 2px 10px 6px; background: #fbfcfd; }
tr.manifest pre { margin: 6px 0; max-height: 420px; }
details summary { cursor: pointer; color: #0969da; font-size: 0.9em; }
table.neighbours td, table.neighbours th { text-align: center; padding: 6px 12px; }
table.neighbours td:first-child, table.neighbours th:first-child { border-right: 3px solid #8c959f; }
table.neighbours figcaption { font-size: 0.8em; margin-top: 2px; font-variant-numeric: tabular-nums; }
"""


def write_report(run_dir: Path, title: str | None = None, data: TensorData | None = None) -> Path:
    """Write `report.html` in `run_dir` from what the run folder holds; return its path.

    Works on any run folder, finished or not, with or without evaluations; what is missing is said so on
    the page. `title` defaults to "ganforge RECIPE on DATASET". `data` is the run's whole dataset when the
    caller already holds it (the Trainer does); otherwise it is loaded from the run's config.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {str(run_dir)!r} does not exist or is not a folder")
    if not any(
        (run_dir / name).exists() for name in ("config.yaml", "metrics.jsonl", "generator.safetensors")
    ):
        raise UserError(
            f"{str(run_dir)!r} holds no config.yaml, metrics.jsonl or generator (not a ganforge run?)"
        )
    started = time.perf_counter()
    with _global_rngs_restored():
        page = _page(RunContents(run_dir, data), title)
    path = run_dir / REPORT_FILE
    temporary = path.with_suffix(".html.tmp")  # a reader never sees half a page
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
    log.debug("report: wrote %s in %.1f s", path, time.perf_counter() - started)
    return path


def _page(run: RunContents, title: str | None) -> str:
    sections = []
    for key, heading, build in SECTIONS:
        try:
            body = build(run)
        except (
            Exception
        ) as exc:  # a report is a by-product: one broken panel must not cost the page (or a run)
            log.warning("report: the %r section failed", heading, exc_info=True)
            body = note(f"This section could not be drawn ({type(exc).__name__}: {exc}).")
        if body is not None:
            sections.append((key, heading, body))
    title = title or _default_title(run)
    nav = "".join(f'<a href="#{key}">{escape(heading)}</a>' for key, heading, _ in sections)
    body = "\n".join(
        f'<section id="{key}"><h2>{escape(heading)}</h2>\n{content}\n</section>'
        for key, heading, content in sections
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body><main>\n"
        f'<header><h1>{escape(title)}</h1><p class="summary">{escape(_summary(run))}</p>'
        f'<p class="path">Run folder: <code>{escape(str(run.run_dir.resolve()))}</code></p>'
        f"<nav>{nav}</nav></header>\n{body}\n"
        f"<footer><p>Written by ganforge {escape(ganforge.__version__)} on "
        f"{escape(time.strftime('%Y-%m-%d %H:%M'))}.</p></footer>\n</main></body></html>\n"
    )


def _default_title(run: RunContents) -> str:
    if run.config is not None:
        return f"ganforge {run.config.recipe.name} on {run.config.data.name}"
    return f"ganforge run {run.run_dir.resolve().name}"


def _summary(run: RunContents) -> str:
    """Return one line: recipe, objective, data, steps done, generator weights, ganforge version."""
    parts = []
    config = run.config
    if config is not None:
        parts += [f"recipe {config.recipe.name}", f"{config.objective.name} loss"]
    info = run.info
    if info is not None:
        shape = "×".join(str(side) for side in info.shape)
        parts.append(
            f"data {info.name} ({shape} images)"
            if info.kind == "images"
            else f"data {info.name} ({info.shape[0]}-D points)"
        )
    steps = run.steps_done
    target = f" of {config.training.steps:,}" if config is not None else ""
    parts.append(f"{steps:,}{target} steps done" if steps is not None else "no steps logged yet")
    if run.sampler is not None:
        parts.append(f"generator: {'EMA' if run.sampler.weights == 'ema' else 'raw'} weights")
    parts.append(f"ganforge {ganforge.__version__}")
    return " · ".join(parts)


@contextlib.contextmanager
def _global_rngs_restored() -> Iterator[None]:
    """Put the global torch / numpy / python RNGs back as they were afterwards.

    The report itself draws only from seeded generators of its own, but libraries it imports on first use
    (scikit-learn for the digits, ...) may draw from the global ones; a run must not be changed by its report.
    """
    torch_state, numpy_state, python_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        np.random.set_state(numpy_state)
        random.setstate(python_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)

"""The sections of the report. Each takes a RunContents and returns HTML, or None when it does not apply.

Every random choice here comes from a seeded generator of its own: the report never draws from, or
changes, the global torch / numpy / python RNGs, and the same run gives the same pictures.
"""

from __future__ import annotations

import json
import math
import shlex
from collections import defaultdict
from html import escape
from typing import Any

import numpy as np
import torch

from ganforge.data import MIXTURES
from ganforge.report.curves import D_OUTPUTS, curves_figure
from ganforge.report.images import image_grid, png_bytes, scatter_figure
from ganforge.report.latent import nearest_neighbours, slerp
from ganforge.report.markup import figure, img, note
from ganforge.report.run import GENERATED_COUNT, RunContents

REAL_SEED = 0  # which training samples are shown
POINTS_SEED = 2  # noise of the generated points in the scatter plot
INTERPOLATION_SEED = 3  # the latents the interpolation strips run between
POINTS_SHOWN = 2000  # generated points in the scatter plot
REAL_POINTS_SHOWN = 5000  # real points behind them (a sample of the training set)
NEIGHBOUR_QUERIES = 8  # generated images whose nearest training images are shown
NEIGHBOURS = 3
STRIPS, STRIP_LENGTH = 3, 10  # latent interpolation: strips of images each
PROGRESS_GRIDS = 8  # at most this many grids from samples/
CLASS_GRID_COUNT, CLASS_GRID_SEED = 100, 4  # the class grid of a conditional run: 10 columns for 10 classes
CELL = 56  # CSS pixels per image in grids (8x8 digits enlarged 7 times, 28x28 twice)
PLOT_DPI = 150  # plots are drawn at 1.5x their CSS size: sharp on high-density screens


def _images_uint8(samples: torch.Tensor) -> np.ndarray:
    from ganforge.sampling import to_uint8_images  # imports the engine: not at import time

    return to_uint8_images(samples)


def _grid(samples: torch.Tensor, columns: int, alt: str) -> str:
    return img(image_grid(_images_uint8(samples), columns=columns, min_cell=CELL), alt, pixelated=True)


def _plot(picture: Any, alt: str, width: int) -> str:
    """Return an <img> of a matplotlib figure, shown `width` CSS pixels wide."""
    return img(png_bytes(picture, dpi=PLOT_DPI), alt, width=width)


def _missing(run: RunContents, *parts: str) -> str:
    reasons = [run.missing[part] for part in parts if part in run.missing]
    return note("Not available: " + "; ".join(reasons) + ".") if reasons else ""


def _pick(count: int, total: int, seed: int) -> torch.Tensor:
    """Return `count` (or `total`) distinct indices below `total`, in random order, drawn with `seed`."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count]


# -- 2. real vs generated -------------------------------------------------------------------------------


def real_vs_generated(run: RunContents) -> str:
    """Return 64 training images beside 64 generated ones; for 2-D points, one scatter plot of both."""
    info = run.info
    if info is None:
        return _missing(run, "generator", "data")
    if info.kind == "points":
        return _points(run)
    parts = []
    if run.train_data is not None:
        real = run.train_data.x[_pick(GENERATED_COUNT, len(run.train_data.x), REAL_SEED)]
        caption = f"{len(real)} training images, chosen at random"
        if run.train_data.info.pair_channels is not None:  # [source | target] pairs: show the targets
            real = real[:, run.train_data.info.pair_channels[0] :]
            caption = f"{len(real)} training targets, chosen at random (their sources: see samples/)"
        parts.append(figure(_grid(real, 8, "real training images"), caption))
    if run.generated is not None:
        sampler = run.sampler
        caption = f"{len(run.generated)} generated images ({sampler.weights} weights, step {sampler.step})"
        parts.append(figure(_grid(run.generated, 8, "generated images"), caption))
    grid = _class_grid(run)
    if run.translating and run.sample_grids:
        parts.append(_newest_translations(run))
    return f'<div class="row">{"".join(parts)}</div>' + grid + _missing(run, "data", "generator")


# What the rows of an image-to-image recipe's sample grids are (its `preview`), top to bottom.
PREVIEW_ROWS = {
    "pix2pix": "source, G's translation, target",
    "cyclegan": "A, A translated to B, B, B translated to A",
    "srgan": "bicubic upscaling, G's upscaling, the original high-resolution patch (crops side by side)",
}


def _newest_translations(run: RunContents) -> str:
    """Return the newest sample grid of an image-to-image run: its generator on fixed training inputs."""
    step, path = run.sample_grids[-1]
    recipe = run.config.recipe.name if run.config is not None else None
    rows = PREVIEW_ROWS.get(recipe or "", "as the recipe's preview lays them out")
    caption = f"The generator on fixed training inputs at step {step:,}, one input per column; rows: {rows}."
    return figure(img(path.read_bytes(), f"translations at step {step}", pixelated=True), caption)


def _class_grid(run: RunContents) -> str:
    """Return a conditional generator's class grid (one row per class, the same noise in each); else ""."""
    sampler = run.sampler
    if sampler is None or sampler.num_classes is None:
        return ""
    samples, columns = sampler.class_grid(CLASS_GRID_COUNT, seed=CLASS_GRID_SEED)
    samples = torch.nan_to_num(samples, 0.0, 0.0, 0.0)
    rows = len(samples) // columns
    shown = "" if rows == sampler.num_classes else f" (the first {rows} of {sampler.num_classes} classes)"
    caption = (
        f"Class grid, one row per class{shown}: row k shows class k, each column the same latent "
        f"({sampler.weights} weights, step {sampler.step})."
    )
    return figure(_grid(samples, columns, "class grid"), caption)


def _points(run: RunContents) -> str:
    """Return a scatter plot of generated points over real ones, with the mixture's mode centres."""
    if run.sampler is None:
        return _missing(run, "generator")
    generated = torch.nan_to_num(run.sampler.sample(POINTS_SHOWN, seed=POINTS_SEED)).numpy()
    if generated.shape[1] < 2:
        return note(f"Points of dimension {generated.shape[1]} cannot be drawn as a scatter plot.")
    real = None
    if run.train_data is not None:
        x = run.train_data.x
        real = x[_pick(REAL_POINTS_SHOWN, len(x), REAL_SEED)].numpy()[:, :2]
    centres = MIXTURES.get(run.info.name, (None, None))[0]
    picture = scatter_figure(generated[:, :2], real, centres, size=6.0)
    shown = "" if generated.shape[1] == 2 else f" (first 2 of {generated.shape[1]} coordinates)"
    caption = f"{POINTS_SHOWN:,} generated points (red) over a sample of the real points (grey){shown}."
    if real is None:
        caption = f"{POINTS_SHOWN:,} generated points{shown} (the real points could not be loaded)."
    if centres is not None:
        caption += (
            " Crosses mark the centres of the mixture's modes: a mode with no red points near it was "
            "dropped (mode collapse)."
        )
    return figure(_plot(picture, "generated points over real points", 600), caption) + _missing(run, "data")


# -- 3. training curves ---------------------------------------------------------------------------------


def training_curves(run: RunContents) -> str:
    """Return the losses and D's outputs over training (metrics.jsonl), the last logged values, and the
    monitors' alerts and rollbacks."""
    picture = curves_figure(run.metrics, width=10.4, events=run.events)
    if picture is None:
        empty = note("No metrics.jsonl lines yet (one is written every logging.log_every steps).")
        return empty + alerts(run)
    last = run.metrics[-1]
    shown = [key for key in last if key != "step" and isinstance(last[key], (int, float))]
    values = ", ".join(f'<span class="pair">{escape(key)} {_number(last[key])}</span>' for key in shown)
    caption = "The losses over training, as logged in metrics.jsonl."
    if any(key in row for row in run.metrics for key in D_OUTPUTS):
        caption = (
            "Left: the losses. Right: D's mean output on real (D(x)) and generated (D(G(z))) samples; "
            "a balanced game keeps both near 0.5, D(x) near 1 with D(G(z)) near 0 means D is winning."
        )
    return (
        figure(_plot(picture, "training curves", 1040), caption)
        + f'<p class="small">Last logged (step {int(last["step"]):,}): {values}.</p>'
        + alerts(run)
    )


def alerts(run: RunContents) -> str:
    """Return a table of the monitors' alerts and the rollbacks, in the order they happened ("" if none)."""
    if not run.events:
        return ""
    rows = []
    for event in run.events:
        step = _number(event.get("step"))
        if "alert" in event:
            what, detail = escape(str(event["alert"])), escape(str(event.get("message", "")))
        elif event.get("event") == "rollback":
            what = "rollback"
            detail = escape(
                f"from step {event.get('from_step', '?')} back to the healthy checkpoint of step "
                f"{event.get('step', '?')} after {event.get('monitor', '?')}; learning rates "
                f"x{event.get('lr_factor', '?')}"
            )
        else:
            what = escape(str(event.get("event")))
            detail = escape(", ".join(f"{k} {v}" for k, v in event.items() if k not in ("step", "event")))
        rows.append(f"<tr><td class='num'>{step}</td><td><code>{what}</code></td><td>{detail}</td></tr>")
    header = "<tr><th>Step</th><th>Monitor / event</th><th>What it saw</th></tr>"
    caption = (
        "Warnings of the training monitors (config section monitors), marked as dotted red lines on the "
        "curves above, and any rollbacks to a healthy checkpoint (policy rollback)."
    )
    return (
        f'<h3>Alerts</h3><table class="alerts">{header}{"".join(rows)}</table>'
        f'<p class="caption">{escape(caption)}</p>'
    )


# -- 4. metrics -----------------------------------------------------------------------------------------


def _number(value: Any) -> str:
    """Return a float with 4 significant digits, an int in full (2,000 rather than 2e+03)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return escape(str(value))
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def _when(manifest: dict[str, Any]) -> str:
    stamp = str(manifest.get("time", ""))
    return escape(stamp[:16].replace("T", " ")) if stamp else "—"


def metrics_table(run: RunContents) -> str:
    """Return a table of the stored scores, each with its manifest; or how to compute some."""
    scores = run.scores
    best = ""
    if run.best is not None:
        record = run.best
        best = note(
            f"Best while training: {record.get('label', '?')} {record.get('metric', '')} = "
            f"{record['value']:.4g} at step {record.get('step', '?')} (kept as best_generator.safetensors)."
        )
    if not scores:
        command = f"ganforge evaluate {shlex.quote(str(run.run_dir))} --metrics fid,kid,pr"
        return (
            '<p class="note">No evaluations yet. Compute some with '
            f"<code>{escape(command)}</code>; this page shows them once it is written again "
            f"(<code>ganforge report {escape(shlex.quote(str(run.run_dir)))}</code>).</p>"
            + best
            + _missing(run, "scores")
        )
    header = "<tr><th>Score</th><th>Values</th><th>n fake</th><th>G step</th><th>Evaluated</th></tr>"
    rows = []
    for score in scores:
        manifest = score.get("manifest") or {}
        generator = manifest.get("generator") or {}
        values = score.get("values") or {}
        cells = "".join(
            f'<div class="value"><span class="key">{escape(str(key))}</span>{_number(value)}</div>'
            for key, value in values.items()
        )
        step = generator.get("step")
        weights = f" ({escape(str(generator['weights']))})" if generator.get("weights") else ""
        rows.append(
            f"<tr><td><code>{escape(str(score['label']))}</code></td><td class='num'>{cells or '—'}</td>"
            f"<td class='num'>{_number(manifest.get('n_fake', '—'))}</td>"
            f"<td class='num'>{_number(step) if step is not None else '—'}{weights}</td>"
            f"<td>{_when(manifest)}</td></tr>"
        )
        manifest_json = escape(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        rows.append(
            f'<tr class="manifest"><td colspan="5"><details><summary>manifest of '
            f"{escape(str(score['label']))}</summary><pre>{manifest_json}</pre></details></td></tr>"
        )
    table = f'<table class="scores">{header}{"".join(rows)}</table>'
    return table + _score_plots(scores) + best + _missing(run, "scores")


def _score_plots(scores: list[dict[str, Any]]) -> str:
    """Return plots of each score against the generator step, for labels measured at several steps."""
    from matplotlib.figure import Figure

    by_label: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for score in scores:
        step = ((score.get("manifest") or {}).get("generator") or {}).get("step")
        for key, value in (score.get("values") or {}).items():
            if isinstance(step, int) and isinstance(value, (int, float)) and math.isfinite(value):
                by_label[score["label"]][key].append((step, float(value)))
    plots = []
    for label, series in by_label.items():
        series = {key: sorted(points) for key, points in series.items() if len({s for s, _ in points}) > 1}
        if not series:
            continue
        picture = Figure(figsize=(3.4 * len(series), 2.6), dpi=100)
        for axes, (key, points) in zip(
            picture.subplots(1, len(series), squeeze=False)[0], series.items(), strict=True
        ):
            axes.plot([s for s, _ in points], [v for _, v in points], marker="o", markersize=3)
            axes.set_title(key, fontsize=10)
            axes.set_xlabel("generator step", fontsize=9)
            axes.tick_params(labelsize=8)
        picture.tight_layout()
        plots.append(figure(_plot(picture, f"{label} against step", round(340 * len(series))), label))
    if not plots:
        return ""
    return f'<h3>Scores over training</h3><div class="row">{"".join(plots)}</div>'


# -- 5. nearest training neighbours ---------------------------------------------------------------------


def nearest_training_images(run: RunContents) -> str | None:
    """Return generated images beside their nearest training images (pixel space); None for points."""
    if run.info is None or run.info.kind != "images":
        return None
    if run.generated is None or run.train_data is None:
        return _missing(run, "generator", "data")
    train = run.train_data.x
    queries = run.generated[:NEIGHBOUR_QUERIES]
    # A scale for the distances: how far training images lie from the nearest *other* training image.
    # Searched in the same pass as the generated images: one scan of the training set.
    probes = _pick(NEIGHBOUR_QUERIES, len(train), REAL_SEED)
    all_distances, all_indices = nearest_neighbours(torch.cat([queries, train[probes]]), train, NEIGHBOURS)
    distances, indices = all_distances[: len(queries)], all_indices[: len(queries)]
    probe_distances, probe_indices = all_distances[len(queries) :], all_indices[len(queries) :]
    is_self = probe_indices[:, 0] == probes
    others = torch.where(
        is_self, probe_distances[:, min(1, probe_distances.shape[1] - 1)], probe_distances[:, 0]
    )
    header = "<tr><th>generated</th>" + "".join(f"<th>{_ordinal(i)} nearest</th>" for i in range(NEIGHBOURS))
    rows = [header + "</tr>"]
    for query, row_distances, row_indices in zip(queries, distances, indices, strict=True):
        cells = [f"<td>{_single(query, 'generated image')}</td>"]
        for distance, index in zip(row_distances.tolist(), row_indices.tolist(), strict=True):
            picture = _single(train[index], f"training image {index}")
            cells.append(f"<td>{figure(picture, f'#{index}  d = {distance:.3g}')}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    caption = (
        f"The first {len(queries)} generated images above, each with its {NEIGHBOURS} nearest training "
        "images by Euclidean distance d between pixel values (in [-1, 1]). A near-identical neighbour "
        "(d much smaller than between two training images) would suggest the generator memorised it. "
        f"Median distance of these generated images to their nearest training image: "
        f"{distances[:, 0].median():.3g}; of {len(probes)} random training images to their nearest other "
        f"training image: {others.median():.3g}."
    )
    return f'<table class="neighbours">{"".join(rows)}</table><p class="caption">{escape(caption)}</p>'


def _single(image: torch.Tensor, alt: str) -> str:
    return img(
        image_grid(_images_uint8(image[None]), columns=1, padding=0, min_cell=CELL), alt, pixelated=True
    )


def _ordinal(index: int) -> str:
    return ["1st", "2nd", "3rd"][index] if index < 3 else f"{index + 1}th"


# -- 6. latent interpolation ----------------------------------------------------------------------------


def latent_interpolation(run: RunContents) -> str | None:
    """Return strips of images decoded along slerp paths between random latents; None for points."""
    if run.info is None or run.info.kind != "images":
        return None
    if run.sampler is None:
        return _missing(run, "generator")
    if run.generated is None:  # an image-to-image generator: no latent space
        return None
    ends = run.sampler.latents(2 * STRIPS, seed=INTERPOLATION_SEED)  # (2 * STRIPS, latent_dim)
    fractions = torch.linspace(0, 1, STRIP_LENGTH)
    path = torch.cat([slerp(ends[2 * i], ends[2 * i + 1], fractions) for i in range(STRIPS)])
    classes = run.sampler.num_classes
    labels = None  # a conditional generator keeps one class along each strip: row r is class r mod K
    if classes is not None:
        labels = (torch.arange(STRIPS) % classes).repeat_interleave(STRIP_LENGTH)
    images = torch.nan_to_num(run.sampler.decode(path, labels=labels), 0.0, 0.0, 0.0)
    caption = (
        f"Each row: {STRIP_LENGTH} images along the spherical path (slerp) between two random latents"
        + (", the class fixed (row k: class k)" if classes is not None else "")
        + ". Smooth changes suggest a well-behaved latent space; sudden jumps or repeats suggest gaps or "
        "collapse."
    )
    return figure(_grid(images, STRIP_LENGTH, "latent interpolation"), caption)


# -- 7. progress ----------------------------------------------------------------------------------------


def progress(run: RunContents) -> str:
    """Return up to 8 of the sample grids written during training, evenly spread, with their steps."""
    grids = run.sample_grids
    if not grids:
        return note("No sample grids yet (one is written every logging.sample_every steps).")
    picks = sorted({round(i) for i in np.linspace(0, len(grids) - 1, min(len(grids), PROGRESS_GRIDS))})
    points = run.info is not None and run.info.kind == "points"
    parts = []
    for step, path in (grids[i] for i in picks):
        png = path.read_bytes()
        width = _progress_width(png)
        parts.append(
            figure(img(png, f"samples at step {step}", width, pixelated=not points), f"step {step:,}")
        )
    inputs = "fixed training inputs" if run.translating else "the same fixed noise"
    caption = f"Samples from {inputs} at {len(picks)} of the {len(grids)} steps that wrote a grid to samples/"
    caption += "."
    return f'<div class="row progress">{"".join(parts)}</div><p class="caption">{escape(caption)}</p>'


def _progress_width(png: bytes) -> int:
    """Return a display width near 250 px: a whole fraction of the grid's own width (keeps pixels even)."""
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(png)) as opened:
        width = opened.width
    return width if width <= 300 else round(width / math.ceil(width / 300))


# -- 8. config ------------------------------------------------------------------------------------------


def config_text(run: RunContents) -> str:
    """Return config.yaml in one <pre>, each top-level section in a block the page sets in columns."""
    if run.config_text is None:
        return note("The run folder has no config.yaml.")
    blocks: list[list[str]] = []
    for line in run.config_text.splitlines():
        if not blocks or (line and not line[0].isspace() and not line.startswith("- ")):
            blocks.append([])
        blocks[-1].append(line)
    texts = ("\n".join(block) + "\n" for block in blocks)
    spans = "".join(f'<span class="block">{escape(text)}</span>' for text in texts)
    return f'<pre class="config">{spans}</pre>'

"""Callbacks: what happens around the loop (metrics, sample grids, curves); the loop knows none of it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ganforge.engine.checkpoint import write_text_atomic
from ganforge.report import plot_curves, save_samples, write_report

if TYPE_CHECKING:
    from ganforge.engine.trainer import Alert, Rollback, Trainer

Stats = dict[str, torch.Tensor]


class Callback:
    """Hooks the Trainer calls; override the ones you need."""

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None: ...

    def on_checkpoint(self, trainer: Trainer) -> None: ...

    def on_train_end(self, trainer: Trainer, reason: str) -> None: ...

    def on_alert(self, trainer: Trainer, alert: Alert) -> None:
        """A monitor saw trouble (mode collapse, divergence, ...) at `alert.step`."""

    def on_rollback(self, trainer: Trainer, rollback: Rollback) -> None:
        """The run went back to a healthy checkpoint (`trainer.step` is now `rollback.to_step`)."""


class MetricsLogger(Callback):
    """Every `log_every` steps: means of the step stats since the last line, learning rates and speed,
    appended to metrics.jsonl and written to TensorBoard."""

    def __init__(self, run_dir: Path, log_every: int, tensorboard: bool) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.log_every = log_every
        self.tensorboard = tensorboard
        self.writer = None
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._clock = (0.0, 0)
        self.last: dict[str, float] = {}  # the latest line, for progress displays

    def on_train_start(self, trainer: Trainer) -> None:
        self._clock = (time.perf_counter(), trainer.step)
        if self.tensorboard and self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(trainer.run_dir / "tensorboard"))

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None:
        for key, value in stats.items():
            self._sums[key] = self._sums[key] + value if key in self._sums else value.clone()
            self._counts[key] = self._counts.get(key, 0) + 1
        if trainer.step % self.log_every == 0:
            self.flush(trainer)

    def flush(self, trainer: Trainer) -> None:
        if not self._sums:
            return
        started, start_step = self._clock
        now = time.perf_counter()
        row: dict[str, float] = {"step": trainer.step}
        row.update({key: float(total) / self._counts[key] for key, total in self._sums.items()})
        row.update({f"lr_{group}": opt.param_groups[0]["lr"] for group, opt in trainer.optimizers.items()})
        row["steps_per_s"] = (trainer.step - start_step) / max(now - started, 1e-9)
        self._sums, self._counts, self._clock = {}, {}, (now, trainer.step)
        self.last = row
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if key != "step":
                    self.writer.add_scalar(key.replace("(", "_").replace(")", ""), value, trainer.step)

    def on_alert(self, trainer: Trainer, alert: Alert) -> None:
        """Append the alert to metrics.jsonl at once (a line with "alert" instead of stats)."""
        self._append({"step": alert.step, "alert": alert.monitor, "message": alert.message})
        if self.writer is not None:
            self.writer.add_text("alerts", f"{alert.monitor}: {alert.message}", alert.step)

    def on_rollback(self, trainer: Trainer, rollback: Rollback) -> None:
        """Forget the stats since the last line and the lines after the healthy checkpoint (their steps are
        trained again), keep every alert and event line, and append a line for the rollback."""
        self._sums, self._counts, self._clock = {}, {}, (time.perf_counter(), trainer.step)
        rewind_metrics(self.path, rollback.to_step)
        event = {
            "step": rollback.to_step,
            "event": "rollback",
            "from_step": rollback.from_step,
            "monitor": rollback.alert.monitor,
            "lr_factor": rollback.lr_factor,
        }
        self._append(event)
        if self.writer is not None:
            text = (
                f"rolled back from step {rollback.from_step} to step {rollback.to_step} after "
                f"{rollback.alert.monitor}; learning rates x{rollback.lr_factor:g}"
            )
            self.writer.add_text("alerts", text, rollback.to_step)

    def _append(self, row: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")

    def on_train_end(self, trainer: Trainer, reason: str) -> None:
        self.flush(trainer)
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def rewind_metrics(path: Path, to_step: int) -> None:
    """Rewrite metrics.jsonl for a run that went back to `to_step` (a resume or a rollback), keeping the
    lines `line_survives_rewind` keeps; the file is replaced atomically, and only when a line goes."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if line_survives_rewind(line, to_step)]
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(line + "\n" for line in kept))


def line_survives_rewind(line: str, to_step: int) -> bool:
    """Return whether a metrics.jsonl line stays when the run goes back to `to_step`: alert and event lines
    always do (they record what happened), stats lines only up to that step (the later steps are trained
    again and logged anew); a line that is not JSON (half-written by a killed run) does not."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return False
    if not isinstance(row, dict):
        return False
    return "alert" in row or "event" in row or row.get("step", 0) <= to_step


class SampleGrids(Callback):
    """Every `every` steps, samples from fixed noise (the EMA generator when there is one) to samples/.

    For a conditional generator of images the grid has one row per class (Sampler.class_grid): `count`
    rounded to a multiple of the classes, at most 10 columns, the same noise in every row. A recipe may draw
    its own grid instead (`Recipe.preview`).
    """

    def __init__(self, run_dir: Path, every: int, count: int, seed: int = 1234) -> None:
        self.folder = run_dir / "samples"
        self.every = every
        self.count = count
        self.seed = seed  # its own generator: the training RNG streams are not touched

    def write(self, trainer: Trainer) -> None:
        sampler, kind = trainer.sampler(), trainer.data.info.kind
        path = self.folder / f"step_{trainer.step:08d}.png"
        preview = trainer.recipe.preview(sampler.net, self.count)  # a recipe's own grid (pix2pix's pairs)
        if preview is not None:
            path = save_samples(preview[0], kind, path, columns=preview[1])
        elif sampler.num_classes is not None and kind == "images":
            samples, columns = sampler.class_grid(self.count, seed=self.seed)
            path = save_samples(samples, kind, path, columns=columns)
        else:
            path = save_samples(sampler.sample(self.count, seed=self.seed), kind, path)
        logger = next((c for c in trainer.callbacks if isinstance(c, MetricsLogger)), None)
        if logger is not None and logger.writer is not None:
            import numpy as np
            from PIL import Image

            logger.writer.add_image(
                "samples", np.asarray(Image.open(path).convert("RGB")), trainer.step, dataformats="HWC"
            )

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None:
        if trainer.step % self.every == 0:
            self.write(trainer)

    def on_train_end(self, trainer: Trainer, reason: str) -> None:
        if trainer.step % self.every:
            self.write(trainer)


class RunReport(Callback):
    """Redraws loss_curve.png and report.html at every checkpoint and at the end."""

    def on_checkpoint(self, trainer: Trainer) -> None:
        plot_curves(trainer.run_dir / "metrics.jsonl", trainer.run_dir / "loss_curve.png")

    def on_train_end(self, trainer: Trainer, reason: str) -> None:
        self.on_checkpoint(trainer)
        title = f"ganforge {trainer.config.recipe.name} on {trainer.data.info.name}"
        write_report(trainer.run_dir, title=title, data=trainer.data)  # the data is in memory: no reload

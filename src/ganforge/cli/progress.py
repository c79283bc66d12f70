"""A rich progress line for the terminal: step, losses, mean D outputs as probabilities, speed, ETA, and
the latest alert of the monitors."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ganforge.engine.callbacks import Callback, Stats
from ganforge.engine.trainer import Alert, Rollback, Trainer


class ProgressBar(Callback):
    """Refreshes a few times a second at most; reading the stats costs one sync per refresh."""

    def __init__(self, console: Console | None = None, refresh_s: float = 0.25) -> None:
        self.console = console or Console(stderr=True)
        self.refresh_s = refresh_s
        self.progress: Progress | None = None
        self.task = 0
        self._last = 0.0
        self._started = (0.0, 0)
        self._stats = ""  # the latest stats text
        self.notice = ""  # the latest alert or rollback, shown in red for the rest of the run

    def on_train_start(self, trainer: Trainer) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=trainer.config.training.steps, completed=trainer.step, stats=""
        )
        self._started = (time.perf_counter(), trainer.step)

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None:
        now = time.perf_counter()
        if self.progress is None or (
            now - self._last < self.refresh_s and trainer.step < trainer.config.training.steps
        ):
            return
        self._last = now
        parts = [f"{key} {float(value):.3f}" for key, value in stats.items()]
        elapsed, first = now - self._started[0], self._started[1]
        parts.append(f"{(trainer.step - first) / max(elapsed, 1e-9):.1f} steps/s")
        self._stats = escape("  ".join(parts))
        self._show(trainer)

    def on_alert(self, trainer: Trainer, alert: Alert) -> None:
        self.notice = f"⚠ {alert.monitor} @ step {alert.step}"
        self._show(trainer)

    def on_rollback(self, trainer: Trainer, rollback: Rollback) -> None:
        self.notice = (
            f"↺ {rollback.alert.monitor} @ step {rollback.from_step}: back to step {rollback.to_step}, "
            f"lr x{rollback.lr_factor:g}"
        )
        self._show(trainer)

    def _show(self, trainer: Trainer) -> None:
        if self.progress is None:
            return
        stats = self._stats + (f"  [bold red]{escape(self.notice)}[/]" if self.notice else "")
        self.progress.update(self.task, completed=trainer.step, stats=stats)

    def on_train_end(self, trainer: Trainer, reason: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=trainer.step)
            self.progress.stop()
            self.progress = None

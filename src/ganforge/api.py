"""The Python API: `train` a config, `resume` a run, `load_generator` to sample."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganforge.config import RunConfig, resolve
from ganforge.engine import Callback, Trainer, TrainResult
from ganforge.errors import UserError


def default_run_dir(config: RunConfig, root: str | Path = "runs") -> Path:
    dataset = config.data.name.split(":")[0]
    return Path(root) / f"{config.recipe.name}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Raise a UserError if training into `run_dir` would clobber something."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out: {str(run_dir)!r} exists and is not a folder")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise UserError(
                f"--out: {str(run_dir)!r} is not empty; resume it with `ganforge resume {run_dir}`, "
                "pick another folder, or pass --overwrite"
            )
        if not ((run_dir / "config.yaml").is_file() or (run_dir / "checkpoints").is_dir()):
            raise UserError(f"--out: {str(run_dir)!r} is not a ganforge run folder; refusing to empty it")


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Make `run_dir` ready for a new run: refuse to clobber an earlier run, unless `overwrite` empties it."""
    check_run_dir(run_dir, overwrite)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def train(
    config: str | Path | dict[str, Any] | RunConfig | None = None,
    *,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    run_dir: str | Path | None = None,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train a GAN and return where the run went; `config` is a YAML path, a dict or a RunConfig."""
    resolved = resolve(config, preset=preset, overrides=list(overrides))
    if run_dir is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("--out: a distributed run needs its run folder named (every process writes there)")
    folder = Path(run_dir) if run_dir is not None else default_run_dir(resolved)
    check_run_dir(folder, overwrite)
    trainer = Trainer(resolved, folder, callbacks)  # checks data and nets; writes nothing yet
    if trainer.world.is_main:  # in a distributed run, rank 0 owns the folder
        prepare_run_dir(folder, overwrite)
    return trainer.fit()


def resume(
    run_dir: str | Path, *, steps: int | None = None, callbacks: Sequence[Callback] = ()
) -> TrainResult:
    """Continue an interrupted run from its newest checkpoint, exactly as if it had not stopped."""
    trainer = Trainer.resume(run_dir, callbacks, steps=steps)
    if steps is not None and steps <= trainer.step:
        raise UserError(f"--steps: the run has already done {trainer.step} steps; ask for more than that")
    return trainer.fit()

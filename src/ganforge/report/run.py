"""What a run folder holds, read lazily for the report: config, generator, training data, logs, scores.

Anything may be missing (a run stopped before its first checkpoint, data moved to another machine, no
evaluations yet): each part is None or empty then, and `missing` says why, for the report to show.
"""

from __future__ import annotations

import json
import logging
import math
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganforge.config import DataConfig, RunConfig, resolve
from ganforge.data import DataInfo, TensorData, load_dataset, split_holdout
from ganforge.errors import UserError
from ganforge.nets import translates
from ganforge.report.curves import read_events, read_metrics

if TYPE_CHECKING:
    from ganforge.sampling import Sampler

log = logging.getLogger("ganforge")

GENERATED_SEED = 1  # the noise of the generated samples shown (SampleGrids uses its own, 1234)
GENERATED_COUNT = 64


class RunContents:
    """The parts of one run folder, each read the first time it is asked for."""

    def __init__(self, run_dir: Path, data: TensorData | None = None) -> None:
        self.run_dir = run_dir
        self.data = data  # the whole dataset, when the caller already holds it
        self.missing: dict[str, str] = {}  # part -> why it could not be read

    @cached_property
    def config_text(self) -> str | None:
        path = self.run_dir / "config.yaml"
        return path.read_text() if path.is_file() else None

    @cached_property
    def config(self) -> RunConfig | None:
        if self.config_text is None:
            self.missing["config"] = "the run folder has no config.yaml"
            return None
        try:
            return resolve(self.run_dir / "config.yaml")
        except UserError as exc:  # e.g. written by another version of ganforge
            self.missing["config"] = f"config.yaml could not be read: {exc}"
            return None

    @cached_property
    def sampler(self) -> Sampler | None:
        from ganforge.sampling import GENERATOR_FILE, load_generator  # imports the engine: not at import time

        if not (self.run_dir / GENERATOR_FILE).is_file():
            self.missing["generator"] = f"no {GENERATOR_FILE} yet (it is written at the first checkpoint)"
            return None
        try:
            return load_generator(self.run_dir)
        except UserError as exc:
            self.missing["generator"] = str(exc)
            return None

    @cached_property
    def data_config(self) -> DataConfig | None:
        if self.config is not None:
            return self.config.data
        if self.sampler is not None:  # the dataset the generator names, with default settings
            return DataConfig(name=self.sampler.data.name)
        return None

    @cached_property
    def train_data(self) -> TensorData | None:
        """Return the training split (the held-out part, if any, is left out, as in training)."""
        if self.data_config is None:
            self.missing["data"] = "neither config.yaml nor the generator names the training data"
            return None
        data = self.data
        if data is None:
            try:
                data = load_dataset(self.data_config)
            except (UserError, OSError) as exc:  # data on another machine, a folder moved, ...
                self.missing["data"] = f"the training data could not be loaded: {exc}"
                return None
        return split_holdout(data, self.data_config.holdout, self.data_config.seed)[0]

    @cached_property
    def info(self) -> DataInfo | None:
        """Return what the generator makes (from its file; else from the training data)."""
        if self.sampler is not None:
            return self.sampler.data
        return self.train_data.info if self.train_data is not None else None

    @cached_property
    def translating(self) -> bool:
        """Return whether the generator is an image-to-image one (its sample grids show fixed inputs)."""
        return self.sampler is not None and translates(self.sampler.net)

    @cached_property
    def generated(self) -> torch.Tensor | None:
        """Return (64, *shape) samples from fixed noise; non-finite values (a diverged run) become 0."""
        if self.sampler is None:
            return None
        if self.translating:
            self.missing["generator"] = "an image-to-image generator draws nothing from noise"
            return None
        return torch.nan_to_num(self.sampler.sample(GENERATED_COUNT, seed=GENERATED_SEED), 0.0, 0.0, 0.0)

    @cached_property
    def metrics(self) -> list[dict[str, float]]:
        return read_metrics(self.run_dir / "metrics.jsonl")

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """Return the monitors' alerts and the rollbacks logged in metrics.jsonl, in the order written."""
        return read_events(self.run_dir / "metrics.jsonl")

    @cached_property
    def sample_grids(self) -> list[tuple[int, Path]]:
        """Return (step, path) of the grids in samples/, oldest first."""
        grids = []
        for path in (self.run_dir / "samples").glob("step_*.png"):
            step = path.stem.removeprefix("step_")
            if step.isdigit():
                grids.append((int(step), path))
        return sorted(grids)

    @cached_property
    def scores(self) -> list[dict[str, Any]]:
        """Return every stored score (evaluations/eval-*.json, read directly), oldest file first."""
        scores = []
        for path in sorted((self.run_dir / "evaluations").glob("eval-*.json")):
            try:
                stored = json.loads(path.read_text())
                found = [s for s in stored["scores"] if isinstance(s, dict) and "label" in s]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("report: skipping %s (%s)", path, exc)
                self.missing.setdefault("scores", f"{path.name} could not be read")
                continue
            scores += found
        return scores

    @cached_property
    def best(self) -> dict[str, Any] | None:
        """Return best.json (the best score seen while training), if the run kept one."""
        path = self.run_dir / "best.json"
        try:
            record = json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None
        ok = isinstance(record, dict) and isinstance(record.get("value"), (int, float))
        return record if ok and math.isfinite(record["value"]) else None

    @property
    def steps_done(self) -> int | None:
        """Return the latest training step the folder shows (generator, logs or sample grids)."""
        steps = [self.sampler.step] if self.sampler is not None else []
        steps += [int(self.metrics[-1]["step"])] if self.metrics else []
        steps += [self.sample_grids[-1][0]] if self.sample_grids else []
        return max(steps) if steps else None

"""Evaluate a trained generator: scores that carry everything needed to reproduce them.

Every score is stored with a manifest: metric, extractor (its label, file hash and resize method),
precision, n_real and n_fake, the reference split, the seed, the hash of the generator weights, versions
and time. `rerun` recomputes the scores of a stored evaluation and reports whether they are identical.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ganforge
from ganforge.config import DataConfig, load_yaml
from ganforge.data import DataInfo, TensorData, load_dataset, split_holdout
from ganforge.errors import UserError
from ganforge.metrics.extractors import EXTRACTORS, Extractor, ExtractorRequest, Precision
from ganforge.metrics.registry import METRICS, EvalContext
from ganforge.sampling import GENERATOR_FILE, Sampler, load_generator

MNIST = DataInfo("mnist5k", "images", (1, 28, 28), 10)


@dataclass(frozen=True)
class Score:
    metric: str  # registry name, e.g. "kid"
    label: str  # what the score is called, with its extractor: "kid[lenet:mnist5k]"
    values: dict[str, float]  # e.g. {"kid_mean": 0.01, "kid_std": 0.002}
    manifest: dict[str, Any]  # everything the values depend on

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "label": self.label, "values": self.values, "manifest": self.manifest}


@dataclass
class Evaluation:
    scores: list[Score]
    path: Path | None = None  # where it was written, if it was
    settings: dict[str, Any] = field(default_factory=dict)


def default_extractor(data: DataInfo) -> str:
    """Return the extractor that suits the data: raw for points, lenet for the digit sets, else inception."""
    if data.kind == "points":
        return "raw"
    return "lenet" if data.name in ("mnist5k", "digits", "stacked-mnist5k") else "inception"


class PerChannel:
    """Applies a one-channel extractor to each channel of stacked images and joins the features."""

    def __init__(self, inner: Extractor, channels: int) -> None:
        self.inner, self.channels = inner, channels
        self.name = inner.name
        self.label = f"{inner.label}x{channels}"
        self.file_hash, self.resize, self.num_classes = inner.file_hash, inner.resize, None

    def features(self, samples: torch.Tensor) -> np.ndarray:
        return np.concatenate(
            [self.inner.features(samples[:, c : c + 1]) for c in range(self.channels)], axis=1
        )

    def logits(self, samples: torch.Tensor) -> np.ndarray:
        raise UserError("per-channel features have no single classifier; IS does not apply to stacked digits")


def build_extractor(
    name: str, data: DataInfo, precision: Precision, batch_size: int, path: str | None
) -> tuple[Extractor, dict[str, object]]:
    """Return the extractor for `data`, and extras some metrics use (a digit reader for stacked digits)."""
    factory = EXTRACTORS.get(name, "--extractor")
    if data.name == "stacked-mnist5k" and name == "lenet":
        digit_reader = factory(ExtractorRequest(MNIST, precision, batch_size, path))

        def read_digits(images: torch.Tensor) -> np.ndarray:
            return digit_reader.logits(images).argmax(axis=1)

        return PerChannel(digit_reader, data.shape[0]), {"channel_classifier": read_digits}
    return factory(ExtractorRequest(data, precision, batch_size, path)), {}


def _run_data(run: Path, sampler: Sampler) -> DataConfig:
    """Return the data config the run trained on (its config.yaml), or the generator's dataset by name."""
    config_file = run / "config.yaml" if run.is_dir() else run.parent / "config.yaml"
    if config_file.is_file():
        return DataConfig.model_validate(load_yaml(config_file).get("data", {}))
    return DataConfig(name=sampler.data.name)


def evaluate(
    run: str | Path,
    metrics: Sequence[str] = ("fid",),
    n: int = 10_000,
    extractor: str | None = None,
    seed: int = 0,
    precision: Precision = "fp32",
    batch_size: int = 256,
    extractor_path: str | None = None,
    write: bool = True,
    sampler: Sampler | None = None,
    data: TensorData | None = None,
    jacobian_reject: float | None = None,
) -> Evaluation:
    """Score the generator of `run` against its training data; write the scores and manifests to
    `RUN/evaluations/` when `write` (and `run` is a folder). `sampler` overrides the saved generator;
    `data` is the run's whole dataset when the caller already holds it (the Trainer does);
    `jacobian_reject` overrides the saved generator's Jacobian truncation (None keeps the run's)."""
    if n < 2:
        raise UserError(f"--n must be at least 2, got {n}")
    run = Path(run)
    names = [name.strip() for name in metrics if name.strip()]
    if not names:
        raise UserError("--metrics: name at least one metric")
    for name in names:
        METRICS.get(name, "--metrics")
    sampler = sampler if sampler is not None else load_generator(run, jacobian_reject=jacobian_reject)
    data_config = _run_data(run, sampler)
    data = data if data is not None else load_dataset(data_config)
    train, heldout = split_holdout(data, data_config.holdout, data_config.seed)
    pick = torch.randperm(len(train.x), generator=torch.Generator().manual_seed(seed))[:n]
    real = train.x[pick.sort().values]
    fake = sampler.sample(n, seed=seed)
    extractor_name = extractor or default_extractor(data.info)
    built, extras = build_extractor(extractor_name, data.info, precision, batch_size, extractor_path)
    context = EvalContext(
        real, fake, built, data.info, seed, heldout.x if heldout is not None else None, extras
    )
    manifest = {
        "extractor": extractor_name,
        "extractor_label": built.label,
        "extractor_file_hash": built.file_hash,
        "extractor_path": extractor_path,
        "resize": built.resize,
        "precision": precision,
        "batch_size": batch_size,
        "n_real": len(real),
        "n_fake": len(fake),
        "reference": {
            "dataset": data_config.name,
            "split": "train",
            "holdout": data_config.holdout,
            "data_seed": data_config.seed,
            "num_samples": data_config.num_samples,
            "image_size": data_config.image_size,
            "channels": data_config.channels,
        },
        "seed": seed,
        "generator": {
            "sha256": sampler.weights_hash,
            "step": sampler.step,
            "weights": sampler.weights,
            "jacobian_reject": sampler.jacobian_reject,
        },
        "versions": {"ganforge": ganforge.__version__, "torch": torch.__version__, "numpy": np.__version__},
    }
    scores = []
    for name in names:
        spec = METRICS.get(name)
        started = time.perf_counter()
        values = {key: float(value) for key, value in spec.compute(context).items()}
        label = f"{name}[{built.label}]" if spec.uses_extractor else name
        stamp = {
            "metric": name,
            "seconds": round(time.perf_counter() - started, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        scores.append(Score(name, label, values, {**stamp, **manifest}))
    settings = {
        "metrics": names,
        "n": n,
        "extractor": extractor_name,
        "seed": seed,
        "precision": precision,
        "batch_size": batch_size,
        "extractor_path": extractor_path,
        "jacobian_reject": sampler.jacobian_reject,
    }
    evaluation = Evaluation(scores, settings=settings)
    if write and run.is_dir():
        evaluation.path = write_evaluation(run, evaluation)
    return evaluation


def write_evaluation(run: Path, evaluation: Evaluation) -> Path:
    folder = run / "evaluations"
    folder.mkdir(parents=True, exist_ok=True)
    # Microseconds in the name: names sort in the order the evaluations were made.
    path = folder / f"eval-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}.json"
    payload = {"settings": evaluation.settings, "scores": [score.to_json() for score in evaluation.scores]}
    path.write_text(json.dumps(payload, indent=2))
    return path


def read_evaluations(run: Path) -> list[dict[str, Any]]:
    """Return every stored score of a run, oldest evaluation first."""
    scores = []
    for path in sorted((run / "evaluations").glob("eval-*.json")):
        scores += json.loads(path.read_text())["scores"]
    return scores


@dataclass(frozen=True)
class Recheck:
    label: str
    key: str
    stored: float
    recomputed: float

    @property
    def same(self) -> bool:
        return self.stored == self.recomputed or (np.isnan(self.stored) and np.isnan(self.recomputed))


def rerun(evaluation_file: str | Path, progress: Callable[[str], None] | None = None) -> list[Recheck]:
    """Recompute the scores stored in an evaluation file with its recorded settings; compare them."""
    path = Path(evaluation_file)
    try:
        stored = json.loads(path.read_text())
        settings, scores = stored["settings"], stored["scores"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"--rerun: {str(path)!r} is not a ganforge evaluation file ({exc})") from None
    run = path.parent.parent
    sampler = load_generator(run, jacobian_reject=settings.get("jacobian_reject"))
    recorded = scores[0]["manifest"]["generator"]["sha256"] if scores else None
    if recorded != sampler.weights_hash:
        raise UserError(f"--rerun: the generator in {str(run)!r} has changed since {path.name} was written")
    if progress is not None:
        progress(f"re-running {', '.join(settings['metrics'])} on {settings['n']} samples")
    again = evaluate(run, write=False, sampler=sampler, **settings)
    checks = []
    for old, new in zip(scores, again.scores, strict=True):
        for key, value in old["values"].items():
            checks.append(Recheck(old["label"], key, value, new.values[key]))
    return checks


__all__ = [
    "EXTRACTORS",
    "GENERATOR_FILE",
    "METRICS",
    "Evaluation",
    "Recheck",
    "Score",
    "evaluate",
    "read_evaluations",
    "rerun",
]

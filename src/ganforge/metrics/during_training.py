"""Evaluation while training: a callback that scores the generator every K steps and keeps the best."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from ganforge.config import EvaluationConfig
from ganforge.engine import checkpoint as ckpt
from ganforge.engine.callbacks import Callback, MetricsLogger, Stats
from ganforge.metrics.evaluate import evaluate
from ganforge.metrics.registry import METRICS
from ganforge.sampling import Sampler, save_generator

if TYPE_CHECKING:
    from ganforge.engine.trainer import Trainer

log = logging.getLogger("ganforge")

BEST_CHECKPOINT = "best.safetensors"  # in checkpoints/: full training state, never pruned
BEST_GENERATOR = "best_generator.safetensors"  # in the run folder: what load_generator reads
BEST_RECORD = "best.json"  # in the run folder: {"step", "label", "value"}


class EvaluateEvery(Callback):
    """Every `config.every` steps: evaluate `config.metric` (stored with its manifest in evaluations/),
    log it, and when it beats the best so far, save the full state and the generator as the best."""

    def __init__(self, config: EvaluationConfig) -> None:
        self.config = config
        self.spec = METRICS.get(config.metric, "evaluation.metric")
        self.best: float | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        record = trainer.run_dir / BEST_RECORD
        if record.is_file():  # a resumed run keeps competing with its earlier best
            self.best = json.loads(record.read_text())["value"]

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None:
        if self.config.every is None or trainer.step % self.config.every:
            return
        sampler = trainer.sampler()
        score = evaluate(
            trainer.run_dir,
            [self.config.metric],
            n=self.config.n,
            extractor=self.config.extractor,
            sampler=sampler,
            data=trainer.data,  # already in memory: no reload every K steps
        ).scores[0]
        value = score.values[self.spec.primary]
        log.info("step %d: %s %s = %.5g", trainer.step, score.label, self.spec.primary, value)
        logger = next((c for c in trainer.callbacks if isinstance(c, MetricsLogger)), None)
        if logger is not None and logger.writer is not None:
            logger.writer.add_scalar(f"eval/{score.label}/{self.spec.primary}", value, trainer.step)
        if self.config.keep_best and self.spec.better(value, self.best):
            self.best = value
            self._save_best(trainer, sampler, score.label, value)

    def _save_best(self, trainer: Trainer, sampler: Sampler, label: str, value: float) -> None:
        ckpt.save_state(trainer.checkpoint_dir / BEST_CHECKPOINT, trainer.state_dict())
        save_generator(trainer.run_dir / BEST_GENERATOR, sampler)
        record = {"step": trainer.step, "label": label, "metric": self.spec.primary, "value": value}
        ckpt.write_text_atomic(trainer.run_dir / BEST_RECORD, json.dumps(record, indent=2))

"""Registered metrics: thin wrappers that feed the plain metric functions from an evaluation context.

A metric reads what it needs from an `EvalContext` (features, logits, samples, the data) and returns named
values, e.g. {"precision": 0.81, "recall": 0.64}. Features are computed once per context and shared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from ganforge.data import MIXTURES, DataInfo
from ganforge.errors import UserError
from ganforge.metrics.cas import classification_accuracy_score
from ganforge.metrics.extractors import Extractor
from ganforge.metrics.fid import fid_from_features
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_inception_distance
from ganforge.metrics.memorisation import memorisation_check
from ganforge.metrics.modes import mode_coverage, stacked_mode_coverage
from ganforge.metrics.prdc import density_coverage, precision_recall
from ganforge.registry import Registry


@dataclass
class EvalContext:
    """Everything one evaluation compares; features are computed on first use and then shared."""

    real: torch.Tensor  # (n_real, *shape) reference samples in data space
    fake: torch.Tensor  # (n_fake, *shape) generated samples in data space
    extractor: Extractor
    data: DataInfo
    seed: int
    heldout: torch.Tensor | None = None  # real samples kept out of training, when the run kept some
    extras: dict[str, object] = field(default_factory=dict)

    @cached_property
    def real_features(self) -> np.ndarray:
        return self.extractor.features(self.real)

    @cached_property
    def fake_features(self) -> np.ndarray:
        return self.extractor.features(self.fake)

    @cached_property
    def fake_logits(self) -> np.ndarray:
        return self.extractor.logits(self.fake)


@dataclass(frozen=True)
class Metric:
    compute: Callable[[EvalContext], dict[str, float]]
    primary: str  # the value that ranks checkpoints, e.g. "fid" or "kid_mean"
    higher_is_better: bool
    uses_extractor: bool = True  # False: the score does not depend on the extractor (mode counts on points)

    def better(self, new: float, old: float | None) -> bool:
        return old is None or (new > old if self.higher_is_better else new < old)


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str, help: str, primary: str, higher_is_better: bool, uses_extractor: bool = True):
    """Register the decorated function as metric `name`, ranked by its value `primary`."""

    def add(compute: Callable[[EvalContext], dict[str, float]]) -> Callable[[EvalContext], dict[str, float]]:
        METRICS.register(name, help)(Metric(compute, primary, higher_is_better, uses_extractor))
        return compute

    return add


@metric("fid", "Fréchet distance of Gaussian fits to real and generated features (Heusel 2017)", "fid", False)
def _fid(context: EvalContext) -> dict[str, float]:
    return {"fid": fid_from_features(context.real_features, context.fake_features)}


@metric(
    "kid", "unbiased MMD² with a cubic kernel, mean ± std over subsets (Bińkowski 2018)", "kid_mean", False
)
def _kid(context: EvalContext) -> dict[str, float]:
    mean, std = kernel_inception_distance(context.real_features, context.fake_features, seed=context.seed)
    return {"kid_mean": mean, "kid_std": std}


@metric("is", "Inception Score from class logits, mean ± std over 10 splits (Salimans 2016)", "is_mean", True)
def _is(context: EvalContext) -> dict[str, float]:
    mean, std = inception_score(context.fake_logits)
    return {"is_mean": mean, "is_std": std}


@metric("pr", "improved precision and recall, k = 3 (Kynkäänniemi et al. 2019)", "recall", True)
def _pr(context: EvalContext) -> dict[str, float]:
    precision, recall = precision_recall(context.real_features, context.fake_features, k=3)
    return {"precision": precision, "recall": recall}


@metric("dc", "density and coverage, k = 5 (Naeem et al. 2020)", "coverage", True)
def _dc(context: EvalContext) -> dict[str, float]:
    density, coverage = density_coverage(context.real_features, context.fake_features, k=5)
    return {"density": density, "coverage": coverage}


@metric(
    "modes", "toy mixtures: modes covered, share within 3σ, reverse KL", "modes", True, uses_extractor=False
)
def _modes(context: EvalContext) -> dict[str, float]:
    if context.data.name not in MIXTURES:
        raise UserError(
            f"--metrics: modes is for the toy mixtures ({', '.join(MIXTURES)}), not {context.data.name}"
        )
    centres, sigma = MIXTURES[context.data.name]
    coverage = mode_coverage(context.fake.numpy().astype(np.float64), centres, sigma)
    return {
        "modes": coverage.modes_covered,
        "high_quality": coverage.high_quality,
        "reverse_kl": coverage.reverse_kl,
    }


@metric(
    "stacked_modes",
    "stacked digits: modes covered of 1,000, KL to uniform (digits read by lenet)",
    "modes",
    True,
)
def _stacked_modes(context: EvalContext) -> dict[str, float]:
    classify = context.extras.get("channel_classifier")
    if classify is None:
        raise UserError("--metrics: stacked_modes is for stacked-mnist5k data with the lenet extractor")
    digits = np.stack([classify(context.fake[:, c : c + 1]) for c in range(3)], axis=1)  # (N, 3)
    covered, kl = stacked_mode_coverage(digits)
    return {"modes": covered, "kl_uniform": kl}


@metric("memorisation", "nearest-training-neighbour distances, samples vs held-out data", "ratio", True)
def _memorisation(context: EvalContext) -> dict[str, float]:
    if context.heldout is None or len(context.heldout) < 2:
        raise UserError("--metrics: memorisation needs held-out data; train with data.holdout > 0 (e.g. 0.1)")
    train = context.real_features
    return memorisation_check(train, context.fake_features, context.extractor.features(context.heldout))


@metric("cas", "classification accuracy score: trained on labelled samples, tested on real data", "cas", True)
def _cas(context: EvalContext) -> dict[str, float]:
    labelled = context.extras.get("labelled_fake")  # (images, labels) from a class-conditional generator
    if labelled is None:
        raise UserError(
            "--metrics: cas needs a class-conditional generator; this run's generator is unconditional"
        )
    if context.heldout is None or context.data.num_classes is None:
        raise UserError(
            "--metrics: cas needs labelled data with a held-out part; train with data.holdout > 0"
        )
    fake_x, fake_y = labelled
    real_x, real_y = context.extras["real_labelled"]
    test_x, test_y = context.extras["heldout_labelled"]
    return classification_accuracy_score(
        fake_x, fake_y, real_x, real_y, test_x, test_y, context.data.num_classes
    )

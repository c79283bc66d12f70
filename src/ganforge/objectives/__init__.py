"""Adversarial objectives: plain loss functions, paired into registered Objective records.

An Objective holds the discriminator's loss and the generator's loss of one GAN game. Recipes call them;
the sign convention (D returns logits, higher = more real) is written in `adversarial.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ganforge.objectives.adversarial import (
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    lsgan_probabilities,
    minimax_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
    relativistic_probabilities,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)
from ganforge.objectives.regularisers import (
    LeCamAnchors,
    add_instance_noise,
    clip_weights_,
    gradient_penalty,
    instance_noise_std,
    lecam_penalty,
    pack,
    packed_shape,
    r1_penalty,
)
from ganforge.registry import Registry

Scores = tuple[torch.Tensor, torch.Tensor]


def sigmoid_probabilities(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> Scores:
    """Return D(x), D(G(z)) as probabilities for objectives whose scores are log-odds."""
    return torch.sigmoid(real_logits), torch.sigmoid(fake_logits)


def _fake_only(loss: Callable[[torch.Tensor], torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Adapt a generator loss of (fake_logits) to the Objective signature (fake_logits, real_logits)."""

    def generator_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return loss(fake_logits)

    generator_loss.__doc__ = loss.__doc__
    return generator_loss


@dataclass(frozen=True)
class Objective:
    """The two losses of one adversarial game; both are minimised."""

    discriminator_loss: Callable[..., torch.Tensor]  # (real_logits, fake_logits) -> scalar
    generator_loss: Callable[..., torch.Tensor]  # (fake_logits, real_logits or None) -> scalar
    # D(x), D(G(z)) as probabilities of "real", for logs and monitors; None for critics (WGAN), whose
    # scores have no probability reading.
    probabilities: Callable[[torch.Tensor, torch.Tensor], Scores] | None = sigmoid_probabilities
    generator_uses_real: bool = False  # G's loss needs D's scores on real data (relativistic losses)
    label_smoothing: bool = False  # discriminator_loss takes `real_label=` (one-sided label smoothing)
    # Stability settings the objective implies unless the config sets them, e.g. WGAN-GP's penalty weight.
    defaults: Mapping[str, Any] = field(default_factory=dict)


OBJECTIVES: Registry[Objective] = Registry("objective")

OBJECTIVES.register("minimax", "original minimax game: G minimises log(1 - D(G(z)))")(
    Objective(minimax_discriminator_loss, _fake_only(minimax_generator_loss), label_smoothing=True)
)
OBJECTIVES.register("nonsaturating", "non-saturating: G minimises -log D(G(z)); D as in minimax")(
    Objective(minimax_discriminator_loss, _fake_only(nonsaturating_generator_loss), label_smoothing=True)
)
OBJECTIVES.register("lsgan", "least squares (Mao et al. 2017): D fits real to 1, fake to 0; G fake to 1")(
    Objective(lsgan_discriminator_loss, _fake_only(lsgan_generator_loss), probabilities=lsgan_probabilities)
)
OBJECTIVES.register("hinge", "hinge (Lim & Ye 2017; Miyato et al. 2018): D relu(1 - real) + relu(1 + fake)")(
    Objective(hinge_discriminator_loss, _fake_only(hinge_generator_loss))
)
OBJECTIVES.register(
    "wgan", "Wasserstein with weight clipping (Arjovsky et al. 2017): clip 0.01, 5 critic steps per G step"
)(
    Objective(
        wasserstein_discriminator_loss,
        _fake_only(wasserstein_generator_loss),
        probabilities=None,
        defaults={"weight_clip": 0.01, "n_critic": 5},
    )
)
OBJECTIVES.register(
    "wgan-gp",
    "Wasserstein with gradient penalty (Gulrajani et al. 2017): lambda 10, 5 critic steps per G step",
)(
    Objective(
        wasserstein_discriminator_loss,
        _fake_only(wasserstein_generator_loss),
        probabilities=None,
        defaults={"gradient_penalty": 10.0, "n_critic": 5},
    )
)
OBJECTIVES.register(
    "relativistic", "relativistic average GAN, RaSGAN (Jolicoeur-Martineau 2018): real vs average fake"
)(
    Objective(
        relativistic_discriminator_loss,
        relativistic_generator_loss,
        probabilities=relativistic_probabilities,
        generator_uses_real=True,
    )
)

__all__ = [
    "LeCamAnchors",
    "OBJECTIVES",
    "Objective",
    "add_instance_noise",
    "clip_weights_",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "instance_noise_std",
    "lecam_penalty",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "lsgan_probabilities",
    "minimax_discriminator_loss",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
    "pack",
    "packed_shape",
    "r1_penalty",
    "relativistic_discriminator_loss",
    "relativistic_generator_loss",
    "relativistic_probabilities",
    "sigmoid_probabilities",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
]

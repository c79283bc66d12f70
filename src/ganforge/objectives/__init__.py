"""Adversarial objectives: plain loss functions, paired into registered Objective records.

An Objective holds the discriminator's loss and the generator's loss of one GAN game. Recipes call them;
the sign convention (D returns logits, higher = more real) is written in `adversarial.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ganforge.objectives.adversarial import (
    minimax_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
)
from ganforge.registry import Registry


@dataclass(frozen=True)
class Objective:
    """The two losses of one adversarial game; both are minimised."""

    discriminator_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (real_logits, fake_logits)
    generator_loss: Callable[[torch.Tensor], torch.Tensor]  # (fake_logits)


OBJECTIVES: Registry[Objective] = Registry("objective")

OBJECTIVES.register("minimax", "original minimax game: G minimises log(1 - D(G(z)))")(
    Objective(minimax_discriminator_loss, minimax_generator_loss)
)
OBJECTIVES.register("nonsaturating", "non-saturating: G minimises -log D(G(z)); D as in minimax")(
    Objective(minimax_discriminator_loss, nonsaturating_generator_loss)
)

__all__ = [
    "OBJECTIVES",
    "Objective",
    "minimax_discriminator_loss",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
]

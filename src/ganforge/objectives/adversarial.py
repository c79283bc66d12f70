"""Adversarial losses as plain functions.

Sign convention, used everywhere in ganforge: **the discriminator returns logits; higher means more real.**
D(x) = sigmoid(logit) is the probability that x is real. Every function returns a scalar to *minimise*.

With log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l), computed stably:

- minimax D loss   -[log D(x) + log(1 - D(G(z)))]  = softplus(-real) + softplus(fake)
- minimax G loss    log(1 - D(G(z)))               = -softplus(fake)          (Goodfellow et al. 2014, eq. 1)
- non-saturating G -log D(G(z))                    = softplus(-fake)          (same paper, section 3)

The minimax G loss saturates early in training, when D rejects fakes confidently (fake logits very negative,
gradient ~ sigmoid(fake) -> 0); the non-saturating loss keeps a strong gradient there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def minimax_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Return -mean[log D(x)] - mean[log(1 - D(G(z)))], D's binary cross-entropy on real and fake."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Return mean[log(1 - D(G(z)))], the generator's side of the original minimax game."""
    return -F.softplus(fake_logits).mean()


def nonsaturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Return -mean[log D(G(z))], the non-saturating generator loss."""
    return F.softplus(-fake_logits).mean()

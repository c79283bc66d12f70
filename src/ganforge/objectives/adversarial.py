"""Adversarial losses as plain functions.

Sign convention, used everywhere in ganforge: **the discriminator returns logits; higher means more real.**
D(x) = sigmoid(logit) is the probability that x is real. Every function returns a scalar to *minimise*.

With log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l), computed stably:

- minimax D loss   -[log D(x) + log(1 - D(G(z)))]  = softplus(-real) + softplus(fake)
- minimax G loss    log(1 - D(G(z)))               = -softplus(fake)          (Goodfellow et al. 2014, eq. 1)
- non-saturating G -log D(G(z))                    = softplus(-fake)          (same paper, section 3)

The minimax G loss saturates early in training, when D rejects fakes confidently (fake logits very negative,
gradient ~ sigmoid(fake) -> 0); the non-saturating loss keeps a strong gradient there.

The least-squares, hinge, Wasserstein and relativistic losses below keep "higher means more real", but their
scores are not log-odds: an LSGAN score regresses onto 0/1, a hinge or WGAN score is unbounded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def minimax_discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0
) -> torch.Tensor:
    """Return -mean[log D(x)] - mean[log(1 - D(G(z)))], D's binary cross-entropy on real and fake.

    `real_label` < 1 is one-sided label smoothing (Salimans et al. 2016): real samples get the target
    `real_label` instead of 1, fakes keep 0, so the loss on real data is t softplus(-l) + (1 - t) softplus(l).
    """
    real_term = F.softplus(-real_logits).mean()
    if real_label != 1.0:
        real_term = real_label * real_term + (1.0 - real_label) * F.softplus(real_logits).mean()
    return real_term + F.softplus(fake_logits).mean()


def minimax_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Return mean[log(1 - D(G(z)))], the generator's side of the original minimax game."""
    return -F.softplus(fake_logits).mean()


def nonsaturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Return -mean[log D(G(z))], the non-saturating generator loss."""
    return F.softplus(-fake_logits).mean()


def lsgan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Return 1/2 mean[(D(x) - 1)^2] + 1/2 mean[D(G(z))^2], the least-squares D loss.

    Mao et al. 2017 with targets a = 0 (fake), b = 1 (real): D regresses its raw score, not a sigmoid, onto
    0 for fakes and 1 for real data.
    """
    return 0.5 * (real_logits - 1.0).square().mean() + 0.5 * fake_logits.square().mean()


def lsgan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Return 1/2 mean[(D(G(z)) - 1)^2], the least-squares G loss (Mao et al. 2017, target c = 1)."""
    return 0.5 * (fake_logits - 1.0).square().mean()


def lsgan_probabilities(
    real_scores: torch.Tensor, fake_scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return D's least-squares scores clamped to [0, 1]; they regress onto 0 (fake) and 1 (real)."""
    return real_scores.clamp(0.0, 1.0), fake_scores.clamp(0.0, 1.0)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Return mean[relu(1 - D(x))] + mean[relu(1 + D(G(z)))], the hinge D loss.

    Lim & Ye 2017; used with spectral normalisation by Miyato et al. 2018. D stops being pushed once a real
    score is above 1 or a fake score below -1.
    """
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Return -mean[D(G(z))], the generator's side of the hinge game."""
    return -fake_logits.mean()


def wasserstein_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Return mean[D(G(z))] - mean[D(x)], the critic loss of the Wasserstein GAN (Arjovsky et al. 2017).

    Minus this value estimates the Wasserstein-1 distance only while the critic is (about) 1-Lipschitz, which
    weight clipping or a gradient penalty has to enforce; the loss alone is unbounded below.
    """
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Return -mean[D(G(z))], the generator's side of the Wasserstein game."""
    return -fake_scores.mean()


def relativistic_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Return the relativistic average D loss (RaSGAN, Jolicoeur-Martineau 2018).

    D is asked how much more real x looks than the average fake, and the reverse:
    -mean log sigmoid(D(x) - mean D(G(z))) - mean log(1 - sigmoid(D(G(z)) - mean D(x)))
    = mean softplus(-(real - mean fake)) + mean softplus(fake - mean real).
    """
    real_vs_fake = real_logits - fake_logits.mean()
    fake_vs_real = fake_logits - real_logits.mean()
    return F.softplus(-real_vs_fake).mean() + F.softplus(fake_vs_real).mean()


def relativistic_generator_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Return the relativistic average G loss: D's loss with the roles of real and fake swapped.

    mean softplus(-(fake - mean real)) + mean softplus(real - mean fake) (Jolicoeur-Martineau 2018). Unlike
    the other generator losses it needs D's scores on real data; the argument order (fake, real) is the
    Objective's.
    """
    fake_vs_real = fake_logits - real_logits.mean()
    real_vs_fake = real_logits - fake_logits.mean()
    return F.softplus(-fake_vs_real).mean() + F.softplus(real_vs_fake).mean()


def relativistic_probabilities(
    real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return sigmoid(D(x) - mean D(G(z))) and sigmoid(D(G(z)) - mean D(x)), the relativistic D's outputs."""
    return torch.sigmoid(real_logits - fake_logits.mean()), torch.sigmoid(fake_logits - real_logits.mean())

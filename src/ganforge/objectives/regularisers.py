"""Regularisers and stabilisers that recipes add to the adversarial losses, as plain functions.

Same convention as `adversarial.py`: D returns scores, higher means more real, and every penalty is a
scalar to *minimise*. Penalties come unweighted; the recipe multiplies by its weight (lambda, gamma / 2, ...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def full_precision_inside_fp16(device_type: str) -> contextlib.AbstractContextManager:
    """Return a context that turns autocast off if it is running in fp16 on `device_type`, else a no-op.

    Gradient penalties differentiate D's gradient. In fp16 the inner gradient is not covered by the loss
    scaler and can underflow or overflow, so it is computed in fp32. bf16 has fp32's range: it stays on.
    """
    if torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type) == torch.float16:
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    target: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Return mean[(||grad D(x_hat)||_2 - target)^2], the WGAN-GP penalty (Gulrajani et al. 2017).

    x_hat = eps real + (1 - eps) fake with eps ~ U[0, 1] drawn once per sample, so x_hat lies on the segment
    between a real and a fake sample; the norm is taken per sample over all non-batch dimensions. The graph
    is kept (create_graph=True) so the penalty can be back-propagated into the critic's weights. The critic
    should not use batch norm: the penalty assumes each score depends on its own sample only.

    Args:
        critic: maps a batch (N, ...) to scores (N,).
        real: real samples (N, ...); detached here.
        fake: generated samples, same shape as `real`; detached here.
        target: the gradient norm the penalty pulls towards (1 for a 1-Lipschitz critic).
        generator: random generator for eps, for repeatable runs; None uses torch's global one.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    real, fake = real.detach().float(), fake.detach().float()
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)  # (N, 1, 1, ...), broadcast over the sample
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    mixed = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    with full_precision_inside_fp16(real.device.type):  # bf16 autocast stays on: it has fp32's range
        (grads,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    norms = torch.linalg.vector_norm(grads.float().flatten(1), ord=2, dim=1)  # (N,)
    return (norms - target).square().mean()


def r1_penalty(real_scores: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """Return mean over the batch of ||grad_x D(x)||^2 on real data, the R1 penalty (Mescheder et al. 2018).

    `real_inputs` must have had `requires_grad_(True)` before the forward pass that produced `real_scores`.
    Under fp16 autocast, run that forward pass inside `full_precision_inside_fp16` (the recipes do).
    The graph is kept (create_graph=True) so the penalty can be back-propagated. Unweighted: the usual loss
    term is gamma / 2 times this value.

    Args:
        real_scores: D's scores (N,) on `real_inputs`.
        real_inputs: the real batch (N, ...) the scores were computed from.
    """
    (grads,) = torch.autograd.grad(real_scores.sum(), real_inputs, create_graph=True)
    return grads.float().square().flatten(1).sum(dim=1).mean()


def lecam_penalty(
    real_scores: torch.Tensor,
    fake_scores: torch.Tensor,
    anchor_real: float | torch.Tensor,
    anchor_fake: float | torch.Tensor,
) -> torch.Tensor:
    """Return mean[relu(D(x) - a_F)^2] + mean[relu(a_R - D(G(z)))^2], the LeCam penalty (Tseng et al. 2021).

    a_R and a_F are moving averages of D's mean score on real and on fake data (see `LeCamAnchors`). The
    penalty keeps real scores from rising above the fakes' running average and fake scores from falling below
    the reals' one, which limits how far D can separate the two; this is the form of the authors' code.

    Args:
        real_scores: D's scores on real data (N,).
        fake_scores: D's scores on generated data (M,).
        anchor_real: running average of D's mean score on real data (a float or 0-d tensor).
        anchor_fake: running average of D's mean score on fake data.
    """
    return (
        F.relu(real_scores - anchor_fake).square().mean() + F.relu(anchor_real - fake_scores).square().mean()
    )


class LeCamAnchors(nn.Module):
    """Exponential moving averages of D's mean scores on real and fake data, the anchors of `lecam_penalty`.

    Kept as buffers, so they follow the module's device and are saved in its state dict (a resumed run keeps
    its anchors). The first update copies the batch means instead of averaging them with the zero start.
    """

    real: torch.Tensor
    fake: torch.Tensor
    updates: torch.Tensor

    def __init__(self, decay: float = 0.99) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay  # weight of the old average at each update
        self.register_buffer("real", torch.zeros(()))  # EMA of mean D(x)
        self.register_buffer("fake", torch.zeros(()))  # EMA of mean D(G(z))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # 0 until the first update

    @torch.no_grad()
    def update(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> None:
        """Move both averages towards this batch's mean scores."""
        decay = self.decay if self.updates.item() > 0 else 0.0
        self.real.mul_(decay).add_((1.0 - decay) * real_scores.detach().float().mean())
        self.fake.mul_(decay).add_((1.0 - decay) * fake_scores.detach().float().mean())
        self.updates.add_(1)


def instance_noise_std(start: float, step: int, anneal_steps: int) -> float:
    """Return the instance-noise standard deviation at `step`: `start` at step 0, linearly down to 0.

    Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017) adds Gaussian noise to D's real and fake
    inputs so that the two distributions overlap early in training; the noise is annealed away so it does
    not blur what D sees later. The value is 0 from `anneal_steps` on (and always, if `anneal_steps` is 0).
    """
    if step < 0 or anneal_steps < 0:
        raise ValueError(f"step and anneal_steps must be >= 0, got {step} and {anneal_steps}")
    if step >= anneal_steps:
        return 0.0
    return start * (1.0 - step / anneal_steps)


def add_instance_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    """Return x + std * N(0, 1) noise of x's shape; x itself when std is 0."""
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    if std == 0:
        return x
    return x + std * torch.randn_like(x)


def pack(x: torch.Tensor, pac: int) -> torch.Tensor:
    """Return x with each group of `pac` consecutive samples merged into one sample, as PacGAN's D sees it.

    PacGAN (Lin et al. 2018): D judges `pac` samples at once, so a generator that drops modes produces packs
    that look less varied than real ones. Samples 0..pac-1 form the first pack, their channels (or features)
    concatenated in order: (N, C, ...) -> (N // pac, pac * C, ...).
    """
    if pac < 1:
        raise ValueError(f"pac must be >= 1, got {pac}")
    n = x.shape[0]
    if n % pac != 0:
        raise ValueError(f"batch size {n} is not divisible by pac {pac}")
    return x.reshape(n // pac, pac * x.shape[1], *x.shape[2:])


def packed_shape(data_shape: Sequence[int], pac: int) -> tuple[int, ...]:
    """Return the shape of one packed sample, (C, ...) -> (pac * C, ...), for building a packed D."""
    return (pac * data_shape[0], *data_shape[1:])


@torch.no_grad()
def clip_weights_(module: nn.Module, bound: float) -> None:
    """Clamp every parameter of `module` to [-bound, bound] in place (WGAN weight clipping)."""
    if bound <= 0:
        raise ValueError(f"bound must be > 0, got {bound}")
    for parameter in module.parameters():
        parameter.clamp_(-bound, bound)

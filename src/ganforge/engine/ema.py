"""Exponential moving average of a network's weights (the "EMA generator" used for sampling)."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class EMA:
    """Keeps `shadow`, a copy of a net whose parameters follow decay * shadow + (1 - decay) * net.

    Before `start` steps the shadow simply copies the net (early weights are not worth averaging).
    Buffers (batch-norm running statistics) are copied, not averaged.
    """

    def __init__(self, net: nn.Module, decay: float, start: int = 0) -> None:
        self.decay = decay
        self.start = start
        self.shadow = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        weight = 0.0 if step < self.start else self.decay
        shadow_params = list(self.shadow.parameters())
        params = [p.detach() for p in net.parameters()]
        torch._foreach_lerp_(shadow_params, params, 1.0 - weight)
        for shadow_buffer, buffer in zip(self.shadow.buffers(), net.buffers(), strict=True):
            shadow_buffer.copy_(buffer)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow.load_state_dict(state)


@torch.no_grad()
def recalibrate_batch_norm(net: nn.Module, inputs: Iterable[torch.Tensor]) -> None:
    """Re-estimate `net`'s batch-norm running statistics from `inputs` ("standing statistics", BigGAN).

    An EMA generator's averaged weights do not match the running statistics copied from the raw
    generator, and samples in eval mode come out washed out. Running the averaged net in train mode with a
    cumulative average (momentum None) gives statistics that belong to its own weights.
    """
    norms = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    was_training = net.training
    net.train()
    for batch in inputs:
        net(batch)
    net.train(was_training)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum

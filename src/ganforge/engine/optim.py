"""Optimizers and learning-rate schedules built from their config sections."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from ganforge.config import OptimizerConfig

FUSED_DEVICES = ("cpu", "cuda")  # where torch has fused Adam/AdamW kernels


def make_optimizer(params: list[torch.nn.Parameter], config: OptimizerConfig) -> torch.optim.Optimizer:
    """Return the configured optimizer. Adam and AdamW use torch's fused kernels where they exist: one
    kernel for all tensors of a step instead of a loop (the same maths; in a one-off timing of a DCGAN-64
    discriminator's step on the 2-core CI machine, about 4x faster than the foreach form)."""
    fused = bool(params) and all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in params)
    # A group whose parameters are all frozen (stability.freeze_d) still gets an optimizer, one that steps
    # nothing: torch refuses an empty parameter list but not an empty parameter group.
    groups: list[torch.nn.Parameter] | list[dict] = params if params else [{"params": []}]
    if config.name in ("adam", "adamw"):
        cls = torch.optim.Adam if config.name == "adam" else torch.optim.AdamW
        return cls(
            groups,
            lr=config.lr,
            betas=config.betas,
            weight_decay=config.weight_decay,
            **({"fused": True} if fused else {}),
        )
    if config.name == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.RMSprop(
        groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def match_memory_format(optimizer: torch.optim.Optimizer) -> None:
    """Give each loaded state tensor (Adam's moments, ...) the memory layout of its parameter.

    Checkpoints store tensors contiguous; a channels_last parameter whose moments come back contiguous
    would take slightly different rounding in the fused kernels, and a resumed run would drift.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.ndim == 4:
                    if param.is_contiguous(memory_format=torch.channels_last):
                        state[key] = value.contiguous(memory_format=torch.channels_last)


def make_schedule(optimizer: torch.optim.Optimizer, config: OptimizerConfig, total_steps: int) -> LambdaLR:
    """Return a schedule stepped once per training step: linear warm-up, then constant/linear/cosine decay."""
    warmup, kind = config.warmup_steps, config.schedule

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if kind == "linear":
            return 1.0 - progress
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return LambdaLR(optimizer, factor)

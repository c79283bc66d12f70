"""Layers and wrappers shared by several net families: minibatch standard deviation, spectral norm."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


class MinibatchStd(nn.Module):
    """Append the batch's spread as one more channel (or feature), so D can see a lack of variety.

    ProGAN's minibatch standard deviation layer (Karras et al. 2018): the batch is cut into groups of G
    samples, each feature's standard deviation over the group is averaged into one number per group, and
    every sample gets its group's number as an extra channel. A generator that collapses to few outputs
    gives small numbers, which D learns to reject.

    Groups are strided as in the authors' code: with M = N / G, group m holds samples m, m + M, m + 2M, ...
    G is min(group_size, N), lowered to the largest divisor of N not above it when N is not a multiple.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.group_size = group_size  # samples per group; smaller groups give noisier statistics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim not in (2, 4):
            raise ValueError(f"MinibatchStd expects (N, C, H, W) or (N, F), got shape {tuple(x.shape)}")
        n = x.shape[0]
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        grouped = x.reshape(g, n // g, *x.shape[1:])  # (G, M, C, H, W) or (G, M, F)
        variance = (grouped - grouped.mean(dim=0)).square().mean(dim=0)  # (M, ...), biased
        std = (variance + 1e-8).sqrt().flatten(1).mean(dim=1)  # (M,): one number per group
        std = std.repeat(g)  # (N,): sample i belongs to group i % M
        if x.ndim == 4:
            extra = std.reshape(n, 1, 1, 1).expand(n, 1, *x.shape[2:])  # (N, 1, H, W)
        else:
            extra = std.reshape(n, 1)  # (N, 1)
        return torch.cat([x, extra.to(x.dtype)], dim=1)  # (N, C+1, H, W) or (N, F+1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Return `module` with spectral normalisation on every Linear, Conv2d and ConvTranspose2d in it.

    Spectral normalisation (Miyato et al. 2018) divides each weight by an estimate of its largest singular
    value, kept up to date by one power iteration per training-mode forward pass, which bounds each layer's
    Lipschitz constant by about 1. Changes `module` in place; layers already parametrised are left alone.
    """
    layers = [
        m
        for m in module.modules()
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d)
        and not parametrize.is_parametrized(m, "weight")
    ]
    for layer in layers:
        spectral_norm(layer)  # picks dim=1 (output channels) for transposed convolutions
    return module

"""Fully connected generator and discriminator (the "vanilla" GAN of Goodfellow et al. 2014)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from ganforge.nets.base import NETS, assert_shape, configurable
from ganforge.nets.layers import MinibatchStd


def _stack(sizes: list[int], activation: type[nn.Module], **act_kwargs: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), activation(**act_kwargs)]
    return layers


@NETS.register("mlp_generator", "MLP generator: z -> hidden ReLU layers -> sample (any data shape)")
class MLPGenerator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # shape of one sample, e.g. (2,) for points, (1, 28, 28) for images
        latent_dim: int,  # size of z
        hidden: tuple[int, ...] = (256, 256, 256),  # widths of the hidden layers
        output: Literal["auto", "tanh", "linear"] = "auto",  # auto: tanh for images, linear otherwise
    ) -> None:
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        if output == "auto":
            output = "tanh" if len(self.data_shape) == 3 else "linear"
        layers = _stack([latent_dim, *hidden], nn.ReLU)
        layers.append(nn.Linear(hidden[-1] if hidden else latent_dim, math.prod(self.data_shape)))
        if output == "tanh":
            layers.append(nn.Tanh())
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert_shape(z, [None, self.latent_dim], "z")
        return self.body(z).view(-1, *self.data_shape)  # (N, *data_shape)


@NETS.register("mlp_discriminator", "MLP discriminator: sample -> hidden LeakyReLU layers -> logit")
class MLPDiscriminator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # shape of one sample
        hidden: tuple[int, ...] = (256, 256, 256),  # widths of the hidden layers
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std feature before the output layer; 0: none
    ) -> None:
        super().__init__()
        self.data_shape = tuple(data_shape)
        layers = _stack([math.prod(self.data_shape), *hidden], nn.LeakyReLU, negative_slope=negative_slope)
        features = hidden[-1] if hidden else math.prod(self.data_shape)
        if minibatch_std:
            layers.append(MinibatchStd(minibatch_std))  # (N, F) -> (N, F + 1)
            features += 1
        layers.append(nn.Linear(features, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, *self.data_shape], "x")
        return self.body(x.flatten(1)).squeeze(1)  # (N,) logits; higher means more real

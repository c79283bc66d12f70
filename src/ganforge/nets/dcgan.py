"""DCGAN generator and discriminator (Radford et al. 2015), sized from the data's shape.

Sizing rule: an image of side S is reached from a start side s0 = S / 2^k by k stride-2 layers, where k is
the largest number of halvings that keeps s0 a whole number of at least 4. So 64 -> 4 (k=4), 32 -> 4 (k=3),
28 -> 7 (k=2), 16 -> 4 (k=2), 8 -> 4 (k=1). Widths double at every halving: the layer at side S/2^i has
width * 2^(i-1) channels (G's last layer and D's first layer have `width`).

As in the paper: strided (transposed) convolutions and no pooling, batch norm in G (not on its output) and
in D (not on its input), ReLU in G, LeakyReLU(0.2) in D, tanh output, weights from N(0, 0.02).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import UserError
from ganforge.nets.base import NETS, assert_shape, configurable, dcgan_init
from ganforge.nets.layers import MinibatchStd


def halvings(side: int) -> int:
    """Return k, the number of stride-2 layers for an image of this side (see the module docstring)."""
    k = 0
    while side % (2 ** (k + 1)) == 0 and side // 2 ** (k + 1) >= 4:
        k += 1
    if k == 0:
        raise UserError(f"dcgan nets need an even image side of at least 8, got {side}")
    return k


def _square_image(data_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise UserError(f"dcgan nets need square images (C, S, S), got data shape {tuple(data_shape)}")
    return data_shape[0], data_shape[1]


@NETS.register("dcgan_generator", "DCGAN generator: transposed convolutions, batch norm, ReLU, tanh")
class DCGANGenerator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        latent_dim: int,  # size of z
        width: int = 64,  # channels of the last hidden layer; doubled at each lower resolution
    ) -> None:
        super().__init__()
        channels, side = _square_image(data_shape)
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        k = halvings(side)
        start = side // 2**k
        top = width * 2 ** (k - 1)
        layers: list[nn.Module] = [  # z as (N, latent, 1, 1) -> (N, top, start, start)
            nn.ConvTranspose2d(latent_dim, top, start, 1, 0, bias=False),
            nn.BatchNorm2d(top),
            nn.ReLU(True),
        ]
        for i in range(k - 1, 0, -1):  # each block doubles the side and halves the channels
            layers += [
                nn.ConvTranspose2d(width * 2**i, width * 2 ** (i - 1), 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2 ** (i - 1)),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert_shape(z, [None, self.latent_dim], "z")
        if not self.training:  # sampling: the convolution kernel, whose result does not depend on the batch
            return self.body(z[:, :, None, None])  # size (a matrix product's blocking does, in the last bit)
        # The first layer maps a 1x1 input to start x start: a transposed convolution that is exactly a
        # matrix product, z (N, latent) @ W (latent, top * start * start). Computed as one, it takes a fifth
        # of the time oneDNN's transposed-convolution kernel takes with channels_last weights in bf16.
        weight = self.body[0].weight  # (latent, top, start, start)
        _, top, start, _ = weight.shape
        if weight.is_contiguous():
            x = (z @ weight.flatten(1)).view(len(z), top, start, start)
        else:  # channels_last weights (latent, start, start, top in memory): the product comes out NHWC too
            x = (z @ weight.permute(0, 2, 3, 1).flatten(1)).view(len(z), start, start, top)
            x = x.permute(0, 3, 1, 2)  # (N, top, start, start), strided as channels_last
        return self.body[1:](x)  # (N, C, S, S) in [-1, 1]


@NETS.register("dcgan_discriminator", "DCGAN discriminator: strided convolutions, batch norm, LeakyReLU")
class DCGANDiscriminator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        width: int = 64,  # channels of the first layer; doubled at each lower resolution
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std channel before the output layer; 0: none
    ) -> None:
        super().__init__()
        channels, side = _square_image(data_shape)
        self.data_shape = tuple(data_shape)
        k = halvings(side)
        start = side // 2**k
        layers: list[nn.Module] = [  # no batch norm on D's input layer
            nn.Conv2d(channels, width, 4, 2, 1, bias=False),
            nn.LeakyReLU(negative_slope, True),
        ]
        for i in range(1, k):
            layers += [
                nn.Conv2d(width * 2 ** (i - 1), width * 2**i, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2**i),
                nn.LeakyReLU(negative_slope, True),
            ]
        top = width * 2 ** (k - 1)
        if minibatch_std:  # (Karras et al. 2018): D sees how varied the batch is
            layers.append(MinibatchStd(minibatch_std))  # (N, top, s0, s0) -> (N, top + 1, s0, s0)
            top += 1
        layers.append(nn.Conv2d(top, 1, start, 1, 0, bias=False))  # -> (N, 1, 1, 1)
        self.body = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, *self.data_shape], "x")
        return self.body(x).flatten()  # (N,) logits; higher means more real

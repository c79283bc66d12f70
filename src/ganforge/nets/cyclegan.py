"""CycleGAN's generator (Zhu et al. 2017, after Johnson et al. 2016): an encoder, residual blocks, a decoder.

It translates like pix2pix's U-Net: source image (N, Cs, S, S) -> image (N, Ct, S, S), with a `source_shape`
and no `latent_dim`; there is no noise at all. The layers, in the paper's notation for `width` w and
`blocks` n:

    c7s1-w, d2w, d4w, R4w x n, u2w, uw, c7s1-Ct

c7s1-k: 7x7 convolution, stride 1, k filters, after a reflection padding of 3; dk: 3x3 stride-2 convolution
(the side halves); Rk: a residual block of two 3x3 convolutions with reflection padding; uk: 3x3 stride-2
transposed convolution (the side doubles). Every layer but the last has instance norm (no affine weights and
no running statistics, as in the paper's code) and ReLU; the last has tanh. The paper uses n = 6 blocks at
128x128 and 9 at 256x256; at 32x32 the 8x8 inner grid needs far fewer, hence the default of 3.

CycleGAN's discriminators are pix2pix's `patchgan_discriminator`, built for one image (C, S, S) rather than
a stacked pair: nothing in that net assumes a pair.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import UserError
from ganforge.nets.base import NETS, assert_shape, configurable


class ResidualBlock(nn.Module):
    """x + F(x); F: reflection pad, 3x3 conv, instance norm, ReLU, reflection pad, 3x3 conv, instance norm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _init_normal(module: nn.Module) -> None:
    """The paper's code initialises convolutions with N(0, 0.02) weights and zero biases."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


@NETS.register("cyclegan_generator", "CycleGAN ResNet: source image -> image, residual blocks, instance norm")
class CycleGANGenerator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (Ct, S, S): the images it makes; S divisible by 4
        source_channels: int | None = None,  # Cs of the images it translates; None: the same as Ct
        width: int = 64,  # filters of the first layer (the paper's 64); 2x and 4x after the downsamplings
        blocks: int = 3,  # residual blocks at side S / 4 (the paper's 6 at 128x128, 9 at 256x256)
    ) -> None:
        super().__init__()
        if len(data_shape) != 3 or data_shape[1] != data_shape[2] or data_shape[1] % 4:
            raise UserError(
                f"cyclegan_generator needs square images whose side divides by 4, got {tuple(data_shape)}"
            )
        if blocks < 0 or width < 1:
            raise UserError(f"cyclegan_generator: needs width >= 1 and blocks >= 0, got {width} and {blocks}")
        channels, side = data_shape[0], data_shape[1]
        self.data_shape = tuple(data_shape)
        self.source_shape = (source_channels or channels, side, side)

        def norm_relu(filters: int) -> list[nn.Module]:
            return [nn.InstanceNorm2d(filters), nn.ReLU(True)]

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(self.source_shape[0], width, 7),
            *norm_relu(width),
            nn.Conv2d(width, 2 * width, 3, 2, 1),  # S -> S/2
            *norm_relu(2 * width),
            nn.Conv2d(2 * width, 4 * width, 3, 2, 1),  # S/2 -> S/4
            *norm_relu(4 * width),
        ]
        layers += [ResidualBlock(4 * width) for _ in range(blocks)]
        layers += [
            nn.ConvTranspose2d(4 * width, 2 * width, 3, 2, 1, output_padding=1),  # S/4 -> S/2
            *norm_relu(2 * width),
            nn.ConvTranspose2d(2 * width, width, 3, 2, 1, output_padding=1),  # S/2 -> S
            *norm_relu(width),
            nn.ReflectionPad2d(3),
            nn.Conv2d(width, channels, 7),
            nn.Tanh(),
        ]
        self.body = nn.Sequential(*layers)
        self.apply(_init_normal)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        assert_shape(source, [None, *self.source_shape], "source")
        return self.body(source)  # (N, Ct, S, S) in [-1, 1]

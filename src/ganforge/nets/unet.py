"""pix2pix's nets (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator, sized from the image.

These translate instead of sampling: the generator maps a source image (N, Cs, S, S) to a target image
(N, Ct, S, S) and has no `latent_dim` but a `source_shape`; the only noise is dropout in its inner decoder
layers, as in the paper. The discriminator scores concat(source, image) (N, Cs + Ct, S, S) patch by patch.

U-Net sizing rule: the encoder halves the side `depth` times, where depth is the number of times the side
divides by 2 (capped by `max_depth`, at least 2): 32 -> 1 (5 halvings), 8 -> 1 (3), 28 -> 7 (2), 256 -> 1
(8, the paper's). Encoder layer i has width * 2^min(i, 3) channels (the paper's C64-C128-C256-C512-...).
The decoder mirrors it, each layer taking the previous one's output concatenated with the encoder's output
at the same side (the skip connections). As in the paper: 4x4 stride-2 convolutions, batch norm except on
the first and innermost encoder layers and on the output, LeakyReLU(0.2) in the encoder, ReLU in the
decoder, dropout 0.5 in the innermost `dropout_layers` decoder layers, tanh output.

PatchGAN sizing rule: `downsamplings` stride-2 layers (by default the most, up to 3, that leave a side of at
least 8; at least 1), then a stride-1 layer and a stride-1 output layer, all 4x4. On 256x256 that is the
paper's 70x70 PatchGAN (30x30 patches); on 32x32 each of the 6x6 logits sees a 34x34 window.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import UserError
from ganforge.nets.base import NETS, assert_shape, configurable, dcgan_init


def _square_image(data_shape: tuple[int, ...], what: str) -> tuple[int, int]:
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise UserError(f"{what} needs square images (C, S, S), got data shape {tuple(data_shape)}")
    return data_shape[0], data_shape[1]


def unet_depth(side: int, max_depth: int = 8) -> int:
    """Return the U-Net's number of halvings for an image of this side (see the module docstring)."""
    depth = 0
    while side % 2 ** (depth + 1) == 0 and depth < max_depth:
        depth += 1
    if depth < 2:
        raise UserError(f"unet_generator needs an image side divisible by 4, got {side}")
    return depth


@NETS.register("unet_generator", "pix2pix U-Net: source image -> target image, skip connections, dropout")
class UNetGenerator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (Ct, S, S): the images it makes
        source_channels: int | None = None,  # Cs of the images it translates; None: the same as Ct
        width: int = 64,  # channels of the first encoder layer; doubled per halving, at most 8x
        max_depth: int = 8,  # most halvings (the paper's 256x256 U-Net has 8)
        dropout: float = 0.5,  # dropout rate of the inner decoder layers: pix2pix's only noise
        dropout_layers: int = 3,  # how many of the innermost decoder layers have dropout
    ) -> None:
        super().__init__()
        channels, side = _square_image(data_shape, "unet_generator")
        self.data_shape = tuple(data_shape)
        self.source_shape = (source_channels or channels, side, side)
        self.depth = depth = unet_depth(side, max_depth)
        widths = [width * 2 ** min(i, 3) for i in range(depth)]  # encoder layer i's output channels
        self.encoder = nn.ModuleList()
        for i in range(depth):  # layer i: side / 2^i -> side / 2^(i+1)
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(self.source_shape[0] if i == 0 else widths[i - 1], widths[i], 4, 2, 1))
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(widths[i]))
            self.encoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList()
        for j in range(depth):  # layer j, innermost first: side / 2^(depth-j) -> side / 2^(depth-j-1)
            inputs = widths[-1] if j == 0 else 2 * widths[depth - 1 - j]  # + the skip from the encoder
            last = j == depth - 1
            outputs = channels if last else widths[depth - 2 - j]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(inputs, outputs, 4, 2, 1)]
            if last:
                layers.append(nn.Tanh())
            else:
                layers.append(nn.BatchNorm2d(outputs))
                if j < dropout_layers and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.decoder.append(nn.Sequential(*layers))
        self.apply(dcgan_init)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        assert_shape(source, [None, *self.source_shape], "source")
        skips = []
        h = source
        for layer in self.encoder:
            h = layer(h)
            skips.append(h)  # skips[i]: (N, widths[i], S / 2^(i+1), S / 2^(i+1))
        h = self.decoder[0](skips[-1])
        for j, layer in enumerate(self.decoder[1:], start=1):
            h = layer(torch.cat([h, skips[self.depth - 1 - j]], dim=1))
        return h  # (N, Ct, S, S) in [-1, 1]


@NETS.register("patchgan_discriminator", "pix2pix PatchGAN: one logit per image patch of (source, image)")
class PatchGANDiscriminator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S): for pix2pix, source and image stacked, C = Cs + Ct
        width: int = 64,  # channels of the first layer; doubled per layer, at most 8x
        downsamplings: int | None = None,  # stride-2 layers; None: the rule of the module docstring
        negative_slope: float = 0.2,  # LeakyReLU slope
    ) -> None:
        super().__init__()
        channels, side = _square_image(data_shape, "patchgan_discriminator")
        self.data_shape = tuple(data_shape)
        if downsamplings is None:
            downsamplings = 1
            while downsamplings < 3 and side // 2 ** (downsamplings + 1) >= 8:
                downsamplings += 1
        widths = [width * 2 ** min(i, 3) for i in range(downsamplings + 1)]
        layers: list[nn.Module] = [
            nn.Conv2d(channels, widths[0], 4, 2, 1),
            nn.LeakyReLU(negative_slope, True),
        ]
        grid = (side + 2 - 4) // 2 + 1
        for i in range(1, downsamplings + 1):  # the last of these is the stride-1 layer
            stride = 2 if i < downsamplings else 1
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=False),
                nn.BatchNorm2d(widths[i]),
                nn.LeakyReLU(negative_slope, True),
            ]
            grid = (grid + 2 - 4) // stride + 1
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        grid = grid - 1
        if grid < 1:
            raise UserError(
                f"patchgan_discriminator: {side}x{side} images are too small for {downsamplings} "
                "downsamplings; lower nets.discriminator.options.downsamplings"
            )
        self.patch_grid = grid  # logits per image: grid x grid
        self.patches = grid * grid
        self.body = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, *self.data_shape], "x")
        return self.body(x).flatten(1)  # (N, patches) logits; higher means more real

"""SRGAN's nets (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network"): the SRResNet generator and the SRGAN discriminator.

The generator upscales: a low-resolution image (N, C, h, w) -> (N, C, scale*h, scale*w). It is fully
convolutional, so it takes any h and w; `source_shape` is the training patch's low-resolution shape, which
marks it as an image-to-image net (nets.base.translates). In the paper's notation, for `width` w and
`blocks` B:

    k9n64 + PReLU;  B x [k3n64, BN, PReLU, k3n64, BN, + skip];  k3n64, BN, + long skip;
    log2(scale) x [k3n256, PixelShuffle(2), PReLU];  k9nC

The paper has w = 64 and B = 16 and a tanh output. `bicubic_skip` (not in the paper; the global residual of
VDSR, Kim et al. 2016) adds the bicubic upscaling of the input to the output instead of the tanh, so the net
only learns the missing detail: it starts at bicubic quality and trains faster, which matters on a CPU.

Context: an output pixel depends on the input pixels within `context` low-resolution pixels of its own
position (the receptive field's radius, rounded up), which is what tiled inference (ganforge.superres) needs
as overlap for tiles to equal the whole image.

The discriminator is the paper's VGG-style net: k3n64 + LeakyReLU(0.2), then seven k3 conv + BN + LeakyReLU
layers with (filters, stride) = (w, 2), (2w, 1), (2w, 2), (4w, 1), (4w, 2), (8w, 1), (8w, 2), a dense layer of
16w units (the paper's 1024) + LeakyReLU and a dense layer to one logit (N,), higher meaning more real.
`features(x)` returns each conv layer's activations, for a feature-matching content loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import UserError
from ganforge.nets.base import NETS, assert_shape, configurable

SCALES = (2, 4, 8)


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Return images x (N, C, h, w) upscaled to (N, C, scale*h, scale*w) by bicubic interpolation."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def bicubic_downscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Return images x (N, C, H, W), H and W divisible by `scale`, shrunk by `scale` with an antialiased
    bicubic kernel (the usual way of making low-resolution inputs; close to MATLAB's imresize)."""
    height, width = x.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"a {width}x{height} image does not shrink by {scale} exactly")
    size = (height // scale, width // scale)
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class _ResidualBlock(nn.Module):
    """x + BN(conv(PReLU(BN(conv(x))))), convolutions 3x3 with zero padding (BN optional)."""

    def __init__(self, channels: int, batch_norm: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            _norm(channels, batch_norm),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1),
            _norm(channels, batch_norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@NETS.register("srresnet_generator", "SRResNet: low-resolution image -> x2/x4/x8 image, sub-pixel upsampling")
class SRResNetGenerator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S): the high-resolution training patches; S divisible by scale
        scale: int = 4,  # upscaling factor: 2, 4 or 8
        width: int = 64,  # channels of every inner layer (the paper's 64)
        blocks: int = 16,  # residual blocks (the paper's 16)
        bicubic_skip: bool = False,  # output = bicubic(input) + learned detail, no tanh (module docstring)
        batch_norm: bool = True,  # the paper's batch norm in the blocks; EDSR (Lim et al. 2017) drops it
    ) -> None:
        super().__init__()
        if scale not in SCALES:
            raise UserError(f"srresnet_generator: scale must be one of {SCALES}, got {scale}")
        if len(data_shape) != 3 or data_shape[1] % scale or data_shape[2] % scale:
            raise UserError(
                f"srresnet_generator: the patches {tuple(data_shape)} must be (C, S, S) with S divisible by "
                f"the scale {scale}"
            )
        if width < 1 or blocks < 0:
            raise UserError(f"srresnet_generator: needs width >= 1 and blocks >= 0, got {width} and {blocks}")
        channels = data_shape[0]
        self.data_shape = tuple(data_shape)
        self.source_shape = (channels, data_shape[1] // scale, data_shape[2] // scale)
        self.scale = scale
        self.bicubic_skip = bicubic_skip
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.blocks = nn.Sequential(*(_ResidualBlock(width, batch_norm) for _ in range(blocks)))
        self.after_blocks = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), _norm(width, batch_norm))
        upsample: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            upsample += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.upsample = nn.Sequential(*upsample)
        self.tail = nn.Conv2d(width, channels, 9, padding=4)
        # Receptive radius in input pixels: head 4, two 3x3 per block, one after them, bicubic's 2; then the
        # upsampling convs at sides x1, x2, x4, ... and the 9x9 tail at the output side, in input pixels.
        radius = 4 + 2 * blocks + 1 + (2 if bicubic_skip else 0)
        radius += sum(1 / 2**i for i in range(int(math.log2(scale)))) + 4 / scale
        self.context = math.ceil(radius) + 1  # one more for where an output pixel falls between inputs

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        assert_shape(source, [None, self.source_shape[0], None, None], "source")
        features = self.head(source)
        features = features + self.after_blocks(self.blocks(features))  # the long skip
        detail = self.tail(self.upsample(features))  # (N, C, scale*h, scale*w)
        if self.bicubic_skip:
            return bicubic_upscale(source, self.scale).to(detail.dtype) + detail
        return torch.tanh(detail)


@NETS.register(
    "srgan_discriminator", "SRGAN's VGG-style D: strided conv + BN + LeakyReLU, dense 1024, 1 logit"
)
class SRGANDiscriminator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S): high-resolution patches; S divisible by 16
        width: int = 64,  # filters of the first layers (the paper's 64); up to 8x in the last
    ) -> None:
        super().__init__()
        if len(data_shape) != 3 or data_shape[1] != data_shape[2] or data_shape[1] % 16:
            raise UserError(
                f"srgan_discriminator needs square patches whose side divides by 16, got {tuple(data_shape)}"
            )
        if width < 1:
            raise UserError(f"srgan_discriminator: width must be at least 1, got {width}")
        self.data_shape = tuple(data_shape)
        plan = [(width, 2), (2 * width, 1), (2 * width, 2), (4 * width, 1), (4 * width, 2), (8 * width, 1)]
        plan.append((8 * width, 2))
        layers = [nn.Sequential(nn.Conv2d(data_shape[0], width, 3, padding=1), nn.LeakyReLU(0.2, True))]
        filters = width
        for out, stride in plan:
            layers.append(
                nn.Sequential(
                    nn.Conv2d(filters, out, 3, stride, 1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, True)
                )
            )
            filters = out
        self.layers = nn.ModuleList(layers)
        side = data_shape[1] // 16
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(filters * side * side, 16 * width),
            nn.LeakyReLU(0.2, True),
            nn.Linear(16 * width, 1),
        )

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the activations after each conv layer, input first (8 maps)."""
        assert_shape(x, [None, *self.data_shape], "x")
        maps = []
        for layer in self.layers:
            x = layer(x)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[-1]).squeeze(1)  # (N,) logits

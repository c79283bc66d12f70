"""LAPGAN nets (Denton et al. 2015): a Laplacian pyramid of generators and of discriminators.

Pyramid: an image of side S is cut into levels of sides S_0 < S_1 < ... < S_L = S, each the double of the
one before. The rule: halve S while it stays even and the half stays at least 7, at most `max_levels - 1`
times, so 28 -> 7, 14, 28; 32 -> 8, 16, 32; 64 -> 16, 32, 64 (capped at 3 levels); 16 -> 8, 16; 8 has no
half of 7 or more and is refused (a pyramid needs two levels).

Down is a 2x2 average pool (each coarse pixel is the mean of the four it covers, so the coarse image of a
[-1, 1] image stays in [-1, 1]); up is bilinear interpolation with align_corners=False (the half-pixel
geometry that matches the pooling grid). The same two functions build the real pyramid (what D sees and G
is conditioned on during training) and go up the levels when G samples, so a sample is read exactly like
real data: I_k = up(I_{k-1}) + h_k. With I_L the image, I_{k-1} = down(I_k), l_k = up(I_{k-1}) and the band
h_k = I_k - l_k, the image is rebuilt exactly from the coarsest level I_0 and the bands (`reconstruct`).

Generator: G_0 makes I_0 from its share of z (a linear layer to a (2 width, S_0, S_0) map, then two 3x3
convolutions, tanh: I_0 is an average of [-1, 1] pixels, so [-1, 1] is its range). Each finer G_k makes the
band h_k from l_k and its share z_k, which a linear layer turns into one extra S_k x S_k input plane (as in
the paper); three 3x3 convolutions with batch norm and ReLU between them (the paper's CIFAR models) and a
linear output, since a real band may take any value in [-2, 2]. Only the final image is clamped to [-1, 1],
in `forward`; the levels from `pyramid` are left unclamped so that I_k = up(I_{k-1}) + h_k holds exactly.

Noise split (`noise_shares`): each of the L finer levels gets latent_dim // (2 L) values (at least 1) and
G_0 the rest, about half: latent 100 over 3 levels -> 50, 25, 25; latent 8 -> 4, 2, 2.

Discriminator: one small convolutional D per level. D_0 scores I_0; D_k scores the pair (l_k, h_k) as
2C channels, so it judges the band given the coarse image it sharpens (the paper's conditional D). Each
returns logits, higher means more real. `level_logits(k, inputs)` is what the recipe calls; `forward(x)`
scores whole images: it builds x's pyramid and sums the levels' logits, which for the paper's factorised
density p(I) = p(I_0) prod_k p(h_k | l_k) is the log-odds of the whole image when each D_k is the optimal
minimax D of its level.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import UserError
from ganforge.nets.base import NETS, assert_shape, configurable, dcgan_init
from ganforge.nets.layers import MinibatchStd

MIN_COARSEST_SIDE = 7  # the coarsest level must still show a shape (MNIST's 28 -> 7)
D_FINAL_SIDE = 4  # each level's D halves its map while it is larger than this, then a linear layer scores it


def pyramid_sizes(side: int, max_levels: int) -> list[int]:
    """Return the level sides S_0 < ... < S_L = side, coarse to fine (see the module docstring)."""
    if max_levels < 2:
        raise UserError(
            f"lapgan nets need max_levels of at least 2 (a pyramid has two levels), got {max_levels}"
        )
    sizes = [side]
    while len(sizes) < max_levels and sizes[0] % 2 == 0 and sizes[0] // 2 >= MIN_COARSEST_SIDE:
        sizes.insert(0, sizes[0] // 2)
    if len(sizes) < 2:
        raise UserError(
            f"lapgan nets need an even image side whose half is at least {MIN_COARSEST_SIDE}, got {side}"
        )
    return sizes


def noise_shares(latent_dim: int, levels: int) -> list[int]:
    """Return how many values of z each level gets, coarse to fine (see the module docstring)."""
    finer = levels - 1
    share = max(1, latent_dim // (2 * finer))
    base = latent_dim - finer * share
    if base < 1:
        raise UserError(
            f"lapgan nets need latent_dim of at least {levels} for {levels} levels, got {latent_dim}"
        )
    return [base, *([share] * finer)]


def downsample(x: torch.Tensor) -> torch.Tensor:
    """Return x (N, C, S, S) at half the side, (N, C, S/2, S/2): each pixel the mean of a 2x2 block."""
    return F.avg_pool2d(x, 2)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Return x (N, C, s, s) at twice the side, (N, C, 2s, 2s), by bilinear interpolation."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class Pyramid:
    """A Laplacian pyramid of a batch, coarse to fine."""

    base: torch.Tensor  # I_0: (N, C, S_0, S_0), the coarsest image
    upsampled: tuple[torch.Tensor, ...]  # l_k = up(I_{k-1}) for k = 1..L: (N, C, S_k, S_k)
    bands: tuple[torch.Tensor, ...]  # h_k = I_k - l_k for k = 1..L: (N, C, S_k, S_k)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> Pyramid:
    """Return the `levels`-level Laplacian pyramid of images x (N, C, S, S)."""
    images = [x]  # I_L, I_{L-1}, ..., I_0
    for _ in range(levels - 1):
        images.append(downsample(images[-1]))
    images.reverse()  # coarse to fine
    upsampled = tuple(upsample(coarse) for coarse in images[:-1])
    bands = tuple(fine - up for fine, up in zip(images[1:], upsampled, strict=True))
    return Pyramid(images[0], upsampled, bands)


def reconstruct(
    base: torch.Tensor, bands: list[torch.Tensor] | tuple[torch.Tensor, ...]
) -> list[torch.Tensor]:
    """Return the images I_0, ..., I_L rebuilt from the coarsest and the bands: I_k = up(I_{k-1}) + h_k."""
    images = [base]
    for band in bands:
        images.append(upsample(images[-1]) + band)
    return images


def _square_image(data_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise UserError(f"lapgan nets need square images (C, S, S), got data shape {tuple(data_shape)}")
    return data_shape[0], data_shape[1]


class BaseGenerator(nn.Module):
    """G_0: noise (N, share) -> the coarsest image (N, C, S_0, S_0) in [-1, 1]."""

    def __init__(self, share: int, channels: int, side: int, width: int) -> None:
        super().__init__()
        self.side, self.top = side, 2 * width
        self.project = nn.Linear(share, self.top * side * side, bias=False)  # batch norm follows: no bias
        self.body = nn.Sequential(
            nn.BatchNorm2d(self.top),
            nn.ReLU(True),
            nn.Conv2d(self.top, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.Conv2d(width, channels, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(len(z), self.top, self.side, self.side)  # (N, 2 width, S_0, S_0)
        return self.body(x)


class BandGenerator(nn.Module):
    """G_k: the upsampled coarser image l_k (N, C, S_k, S_k) and noise (N, share) -> the band h_k."""

    def __init__(self, share: int, channels: int, side: int, width: int) -> None:
        super().__init__()
        self.side = side
        self.noise_plane = nn.Linear(share, side * side)  # z_k as one more input channel (the paper's)
        self.body = nn.Sequential(
            nn.Conv2d(channels + 1, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.Conv2d(width, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.Conv2d(width, channels, 3, 1, 1),  # linear: a band may take any value in [-2, 2]
        )

    def forward(self, upsampled: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        plane = self.noise_plane(z).view(len(z), 1, self.side, self.side)  # (N, 1, S_k, S_k)
        return self.body(torch.cat([upsampled, plane], dim=1))  # (N, C, S_k, S_k)


@NETS.register("lapgan_generator", "LAPGAN generator: a coarse image, then one band per finer level")
class LapGANGenerator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        latent_dim: int,  # size of z, split over the levels (see noise_shares)
        width: int = 64,  # channels of each level's hidden convolutions (G_0's first map has twice this)
        max_levels: int = 3,  # most pyramid levels; fewer when the side cannot be halved that often
    ) -> None:
        super().__init__()
        channels, side = _square_image(data_shape)
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        self.sizes = pyramid_sizes(side, max_levels)  # S_0, ..., S_L
        self.shares = noise_shares(latent_dim, len(self.sizes))  # z's values per level, coarse to fine
        self.base = BaseGenerator(self.shares[0], channels, self.sizes[0], width)
        self.bands = nn.ModuleList(
            BandGenerator(share, channels, size, width)
            for share, size in zip(self.shares[1:], self.sizes[1:], strict=True)
        )
        self.apply(dcgan_init)

    def split_noise(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Return z (N, latent_dim) cut into the levels' shares, coarse to fine: [(N, share_k)]."""
        assert_shape(z, [None, self.latent_dim], "z")
        return list(z.split(self.shares, dim=1))

    def band(self, level: int, upsampled: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Return G_level's band h (N, C, S_k, S_k) for the upsampled coarser image l (N, C, S_k, S_k)."""
        assert_shape(upsampled, [None, self.data_shape[0], self.sizes[level], self.sizes[level]], "upsampled")
        return self.bands[level - 1](upsampled, z)

    def pyramid(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Return every level's generated image for z (N, latent_dim), coarse to fine, unclamped:
        [(N, C, S_0, S_0), ..., (N, C, S, S)], each I_k = up(I_{k-1}) + G_k(up(I_{k-1}), z_k)."""
        shares = self.split_noise(z)
        images = [self.base(shares[0])]
        for level, share in enumerate(shares[1:], start=1):
            upsampled = upsample(images[-1])
            images.append(upsampled + self.band(level, upsampled, share))
        return images

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.pyramid(z)[-1].clamp(-1, 1)  # (N, C, S, S) in [-1, 1]


class LevelDiscriminator(nn.Module):
    """D_k: one level's input (N, C_in, s, s) -> logits (N,); higher means more real."""

    def __init__(
        self, in_channels: int, side: int, width: int, negative_slope: float, minibatch_std: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [  # no batch norm on the input layer, as in DCGAN
            nn.Conv2d(in_channels, width, 3, 1, 1),
            nn.LeakyReLU(negative_slope, True),
        ]
        channels = width
        while side > D_FINAL_SIDE:  # stride 2, kernel 3, padding 1: side -> ceil(side / 2)
            layers += [
                nn.Conv2d(channels, 2 * channels, 3, 2, 1, bias=False),
                nn.BatchNorm2d(2 * channels),
                nn.LeakyReLU(negative_slope, True),
            ]
            channels, side = 2 * channels, (side + 1) // 2
        if minibatch_std:  # (Karras et al. 2018): D sees how varied the batch is
            layers.append(MinibatchStd(minibatch_std))
            channels += 1
        layers += [nn.Flatten(), nn.Linear(channels * side * side, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten()


@NETS.register(
    "lapgan_discriminator", "LAPGAN discriminators: the coarse image, then each band given its level"
)
class LapGANDiscriminator(nn.Module):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        width: int = 64,  # channels of each level's first layer; doubled at each halving inside a level
        max_levels: int = 3,  # most pyramid levels; must match the generator's
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std channel before each level's output; 0: none
    ) -> None:
        super().__init__()
        channels, side = _square_image(data_shape)
        self.data_shape = tuple(data_shape)
        self.sizes = pyramid_sizes(side, max_levels)  # S_0, ..., S_L
        self.levels = nn.ModuleList(
            LevelDiscriminator(
                channels if k == 0 else 2 * channels, size, width, negative_slope, minibatch_std
            )
            for k, size in enumerate(self.sizes)
        )
        self.apply(dcgan_init)

    def level_inputs(self, pyramid: Pyramid, bands: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Return what each level's D scores: [I_0, (l_1, h_1), ..., (l_L, h_L)] with pairs as 2C channels.

        `bands` replaces the pyramid's bands (generated ones, on the real coarse images) when given.
        """
        chosen = pyramid.bands if bands is None else bands
        pairs = [torch.cat([up, band], dim=1) for up, band in zip(pyramid.upsampled, chosen, strict=True)]
        return [pyramid.base, *pairs]

    def level_logits(self, level: int, inputs: torch.Tensor) -> torch.Tensor:
        """Return D_level's logits (N,) for its input: I_0 (N, C, S_0, S_0) or a pair (N, 2C, S_k, S_k)."""
        channels = self.data_shape[0] * (1 if level == 0 else 2)
        assert_shape(inputs, [None, channels, self.sizes[level], self.sizes[level]], f"level {level} input")
        return self.levels[level](inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, *self.data_shape], "x")
        inputs = self.level_inputs(laplacian_pyramid(x, len(self.sizes)))
        return torch.stack([self.level_logits(k, part) for k, part in enumerate(inputs)]).sum(dim=0)  # (N,)

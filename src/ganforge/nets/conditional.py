"""Class-conditional nets: what cgan, acgan and projection build, as MLPs (any data shape) and DCGAN convnets.

Conventions (y is always (N,) int64 class indices in [0, num_classes)):

- a conditional generator's `forward(z, y=None)` maps (N, latent_dim) noise and labels to (N, *data_shape)
  samples. Called with z alone (as the engine does to recalibrate an EMA generator's batch norm, and as the
  monitors do) it cycles the classes over the rows, 0, 1, ..., K-1, 0, ...: a class-balanced batch.
- a label-input discriminator (cgan, projection) has `forward(x, y) -> (N,)` logits, higher meaning more
  real for class y.
- an auxiliary-classifier discriminator (acgan) has `forward(x) -> (N, 1 + num_classes)`: column 0 is the
  real/fake logit, the rest are class logits.

Every conditional net exposes `num_classes`; generators also `latent_dim`. The convolutional ones reuse the
DCGAN nets and their sizing rule (nets/dcgan.py), so they accept the same image shapes.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from ganforge.nets.base import NETS, assert_shape, configurable, dcgan_init
from ganforge.nets.dcgan import DCGANDiscriminator, DCGANGenerator, _square_image, halvings
from ganforge.nets.layers import MinibatchStd
from ganforge.nets.mlp import MLPGenerator


def cycled_labels(n: int, num_classes: int, device: torch.device) -> torch.Tensor:
    """Return (n,) labels 0, 1, ..., K-1, 0, 1, ...: what a conditional G uses when called without labels."""
    return torch.arange(n, device=device) % num_classes


def check_labels(y: torch.Tensor, n: int, num_classes: int) -> None:
    """Raise if `y` is not (n,) integer labels (values are checked by the sampler, not on every step)."""
    assert_shape(y, [n], "y")
    if y.is_floating_point():
        raise ValueError(f"y: expected integer class labels, got {y.dtype}")


class ClassBatchNorm(nn.Module):
    """Class-conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018): batch norm without its
    own affine, then a per-class scale gamma and shift beta.

    With `shared=0` (the projection paper) gamma and beta are per-class tables, initialised as DCGAN's
    batch norm (gamma ~ N(1, 0.02), beta = 0), and `forward` takes the labels. With `shared=E` (BigGAN,
    Brock et al. 2019) they are linear maps of an (N, E) class embedding that the generator shares across
    its layers, gamma = 1 + W_g e and beta = W_b e, and `forward` takes that embedding.
    """

    def __init__(self, features: int, num_classes: int, dims: Literal[1, 2], shared: int = 0) -> None:
        super().__init__()
        norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        self.norm = norm(features, affine=False)
        self.shared = shared
        if shared:
            self.gamma: nn.Module = nn.Linear(shared, features, bias=False)  # e (N, E) -> (N, C)
            self.beta: nn.Module = nn.Linear(shared, features, bias=False)
            for linear in (self.gamma, self.beta):
                nn.init.normal_(linear.weight, 0.0, 0.02)
        else:
            self.gamma = nn.Embedding(num_classes, features)  # (K, C)
            self.beta = nn.Embedding(num_classes, features)  # (K, C)
            nn.init.normal_(self.gamma.weight, 1.0, 0.02)
            nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """`cond`: (N,) labels, or with `shared` the (N, E) class embedding."""
        shape = (len(x), -1) + (1,) * (x.ndim - 2)  # (N, C) or (N, C, 1, 1)
        gamma, beta = self.gamma(cond).view(shape), self.beta(cond).view(shape)
        if self.shared:
            gamma = 1 + gamma
        return self.norm(x) * gamma + beta


class _Conditional(nn.Module):
    num_classes: int

    def _labels(self, y: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        if y is None:
            return cycled_labels(len(like), self.num_classes, like.device)
        check_labels(y, len(like), self.num_classes)
        return y


# -- generators -----------------------------------------------------------------------------------------


class _ClassNormGenerator(_Conditional):
    """What the class-norm generators share: labels checked or cycled, and the optional shared embedding."""

    embed: nn.Embedding | None

    def _setup_embedding(self, num_classes: int, shared_embedding: int) -> None:
        if shared_embedding < 0:
            raise ValueError(
                f"shared_embedding: expected 0 (per-class tables) or a size > 0, got {shared_embedding}"
            )
        self.embed = nn.Embedding(num_classes, shared_embedding) if shared_embedding else None  # N(0, 1) rows

    def _condition(self, y: torch.Tensor) -> torch.Tensor:
        """What the class norms take: the labels, or their shared embedding (N, E)."""
        return y if self.embed is None else self.embed(y)


class _ConcatGenerator(_Conditional):
    """z concatenated with a learned label embedding, fed to an unconditional generator (Mirza & Osindero)."""

    body: nn.Module

    def __init__(self, latent_dim: int, num_classes: int, embedding: int) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embedding)  # (K, E), N(0, 1) entries like z's

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(z, [None, self.latent_dim], "z")
        y = self._labels(y, z)
        return self.body(torch.cat([z, self.embed(y).to(z.dtype)], dim=1))  # (N, *data_shape)


@NETS.register("cond_mlp_generator", "conditional MLP generator: [z, embed(y)] -> hidden ReLU layers")
class ConditionalMLPGenerator(_ConcatGenerator):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # shape of one sample
        latent_dim: int,  # size of z
        num_classes: int,  # K: labels are 0..K-1
        embedding: int = 16,  # size of the label embedding concatenated to z
        hidden: tuple[int, ...] = (256, 256, 256),  # widths of the hidden layers
        output: Literal["auto", "tanh", "linear"] = "auto",  # auto: tanh for images, linear otherwise
    ) -> None:
        super().__init__(latent_dim, num_classes, embedding)
        self.data_shape = tuple(data_shape)
        self.body = MLPGenerator(data_shape, latent_dim + embedding, hidden, output)


@NETS.register("cond_dcgan_generator", "conditional DCGAN generator: [z, embed(y)] -> DCGAN generator")
class ConditionalDCGANGenerator(_ConcatGenerator):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        latent_dim: int,  # size of z
        num_classes: int,  # K: labels are 0..K-1
        embedding: int = 16,  # size of the label embedding concatenated to z
        width: int = 64,  # channels of the last hidden layer; doubled at each lower resolution
    ) -> None:
        super().__init__(latent_dim, num_classes, embedding)
        self.data_shape = tuple(data_shape)
        self.body = DCGANGenerator(data_shape, latent_dim + embedding, width)


@NETS.register("cbn_mlp_generator", "MLP generator with class-conditional batch norm (projection GANs)")
class ClassNormMLPGenerator(_ClassNormGenerator):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # shape of one sample
        latent_dim: int,  # size of z
        num_classes: int,  # K: labels are 0..K-1
        hidden: tuple[int, ...] = (256, 256, 256),  # widths of the hidden layers, each with a class norm
        output: Literal["auto", "tanh", "linear"] = "auto",  # auto: tanh for images, linear otherwise
        shared_embedding: int = 0,  # 0: per-class gamma/beta tables; E > 0: BigGAN's shared class embedding
    ) -> None:
        super().__init__()
        self.data_shape, self.latent_dim, self.num_classes = tuple(data_shape), latent_dim, num_classes
        self._setup_embedding(num_classes, shared_embedding)
        sizes = [latent_dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.norms = nn.ModuleList(ClassBatchNorm(w, num_classes, 1, shared_embedding) for w in hidden)
        self.out = nn.Linear(sizes[-1], math.prod(self.data_shape))
        tanh = output == "tanh" or (output == "auto" and len(self.data_shape) == 3)
        self.squash = nn.Tanh() if tanh else nn.Identity()

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(z, [None, self.latent_dim], "z")
        cond = self._condition(self._labels(y, z))
        h = z
        for layer, norm in zip(self.layers, self.norms, strict=True):
            h = torch.relu(norm(layer(h), cond))
        return self.squash(self.out(h)).view(-1, *self.data_shape)  # (N, *data_shape)


@NETS.register("cbn_dcgan_generator", "DCGAN generator with class-conditional batch norm (projection GANs)")
class ClassNormDCGANGenerator(_ClassNormGenerator):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        latent_dim: int,  # size of z
        num_classes: int,  # K: labels are 0..K-1
        width: int = 64,  # channels of the last hidden layer; doubled at each lower resolution
        shared_embedding: int = 0,  # 0: per-class gamma/beta tables; E > 0: BigGAN's shared class embedding
    ) -> None:
        super().__init__()
        channels, side = _square_image(data_shape)
        self.data_shape, self.latent_dim, self.num_classes = tuple(data_shape), latent_dim, num_classes
        self._setup_embedding(num_classes, shared_embedding)
        k = halvings(side)
        start = side // 2**k
        widths = [width * 2**i for i in range(k - 1, -1, -1)]  # top ... width, as in DCGANGenerator
        convs = [nn.ConvTranspose2d(latent_dim, widths[0], start, 1, 0, bias=False)]  # -> (top, s0, s0)
        convs += [
            nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        ]
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(ClassBatchNorm(w, num_classes, 2, shared_embedding) for w in widths)
        self.out = nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False)
        for conv in [*self.convs, self.out]:  # the class norms are initialised as DCGAN's batch norm already
            dcgan_init(conv)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(z, [None, self.latent_dim], "z")
        cond = self._condition(self._labels(y, z))
        h = z[:, :, None, None]  # (N, latent, 1, 1)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = torch.relu(norm(conv(h), cond))
        return torch.tanh(self.out(h))  # (N, C, S, S) in [-1, 1]


# -- discriminators -------------------------------------------------------------------------------------


def _mlp_trunk(
    data_shape: tuple[int, ...], hidden: tuple[int, ...], slope: float, minibatch_std: int, extra: int = 0
) -> tuple[nn.Sequential, int]:
    """Return (flattened sample [+ `extra` inputs] -> features, number of features)."""
    sizes = [math.prod(data_shape) + extra, *hidden]
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.LeakyReLU(slope)]
    features = sizes[-1]
    if minibatch_std:
        layers.append(MinibatchStd(minibatch_std))  # (N, F) -> (N, F + 1)
        features += 1
    return nn.Sequential(*layers), features


def _dcgan_trunk(
    data_shape: tuple[int, ...], width: int, slope: float, minibatch_std: int
) -> tuple[nn.Sequential, int]:
    """Return (image -> (N, F, s0, s0) features, F * s0 * s0): a DCGAN discriminator without its last conv."""
    base = DCGANDiscriminator(data_shape, width, slope, minibatch_std)
    last = base.body[-1]
    return nn.Sequential(*list(base.body)[:-1]), last.in_channels * last.kernel_size[0] ** 2


class _LabelInputDiscriminator(_Conditional):
    """cGAN discriminator (Mirza & Osindero 2014): the label enters as extra input."""

    trunk: nn.Module

    def __init__(self, data_shape: tuple[int, ...], num_classes: int, features: int) -> None:
        super().__init__()
        self.data_shape, self.num_classes = tuple(data_shape), num_classes
        self.head = nn.Linear(features, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, *self.data_shape], "x")
        check_labels(y, len(x), self.num_classes)
        return self.head(self.trunk(self.joined(x, y)).flatten(1)).squeeze(1)  # (N,) logits

    def joined(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@NETS.register("cond_mlp_discriminator", "conditional MLP discriminator: [x, embed(y)] -> logit")
class ConditionalMLPDiscriminator(_LabelInputDiscriminator):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # shape of one sample
        num_classes: int,  # K: labels are 0..K-1
        embedding: int = 16,  # size of the label embedding concatenated to the flattened sample
        hidden: tuple[int, ...] = (256, 256, 256),  # widths of the hidden layers
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std feature before the output layer; 0: none
    ) -> None:
        trunk, features = _mlp_trunk(tuple(data_shape), hidden, negative_slope, minibatch_std, embedding)
        super().__init__(data_shape, num_classes, features)
        self.trunk, self.embed = trunk, nn.Embedding(num_classes, embedding)

    def joined(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.flatten(1), self.embed(y).to(x.dtype)], dim=1)  # (N, D + E)


@NETS.register("cond_dcgan_discriminator", "conditional DCGAN discriminator: label maps as extra channels")
class ConditionalDCGANDiscriminator(_LabelInputDiscriminator):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        num_classes: int,  # K: labels are 0..K-1
        label_channels: int = 1,  # channels of the learned S x S label map concatenated to the image
        width: int = 64,  # channels of the first layer; doubled at each lower resolution
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std channel before the output layer; 0: none
    ) -> None:
        channels, side = _square_image(data_shape)
        widened = (channels + label_channels, side, side)
        trunk, features = _dcgan_trunk(widened, width, negative_slope, minibatch_std)
        super().__init__(data_shape, num_classes, features)
        self.trunk, self.label_channels = trunk, label_channels
        self.embed = nn.Embedding(num_classes, label_channels * side * side)  # a projected label map

    def joined(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        maps = self.embed(y).to(x.dtype).view(len(x), self.label_channels, *x.shape[2:])
        return torch.cat([x, maps], dim=1)  # (N, C + label_channels, S, S)


class _FeatureDiscriminator(_Conditional):
    """A trunk of features phi(x), flattened, and heads on them."""

    trunk: nn.Module

    flat_input = False  # the trunk takes flattened samples (MLPs)
    sum_pool = False  # the trunk's feature maps are summed over space (global sum pooling) before the heads

    def features(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, *self.data_shape], "x")
        h = self.trunk(x.flatten(1) if self.flat_input else x)  # (N, F) or (N, C, s0, s0)
        return h.sum(dim=(2, 3)) if self.sum_pool else h.flatten(1)  # (N, F) or (N, C)


class AuxiliaryClassifier(_FeatureDiscriminator):
    """AC-GAN discriminator (Odena et al. 2017): one head scores real/fake, one classifies."""

    def __init__(self, data_shape: tuple[int, ...], num_classes: int, features: int) -> None:
        super().__init__()
        self.data_shape, self.num_classes = tuple(data_shape), num_classes
        self.head = nn.Linear(features, 1 + num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (N, 1 + K): real/fake logit, then class logits


@NETS.register("ac_mlp_discriminator", "AC-GAN MLP discriminator: real/fake logit and class logits")
class AuxiliaryClassifierMLPDiscriminator(AuxiliaryClassifier):
    flat_input = True

    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # shape of one sample
        num_classes: int,  # K: labels are 0..K-1
        hidden: tuple[int, ...] = (256, 256, 256),  # widths of the hidden layers
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std feature before the output layer; 0: none
    ) -> None:
        trunk, features = _mlp_trunk(tuple(data_shape), hidden, negative_slope, minibatch_std)
        super().__init__(data_shape, num_classes, features)
        self.trunk = trunk


@NETS.register("ac_dcgan_discriminator", "AC-GAN DCGAN discriminator: real/fake logit and class logits")
class AuxiliaryClassifierDCGANDiscriminator(AuxiliaryClassifier):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        num_classes: int,  # K: labels are 0..K-1
        width: int = 64,  # channels of the first layer; doubled at each lower resolution
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std channel before the output layer; 0: none
    ) -> None:
        trunk, features = _dcgan_trunk(tuple(data_shape), width, negative_slope, minibatch_std)
        super().__init__(data_shape, num_classes, features)
        self.trunk = trunk
        dcgan_init(self.head)


class _Projection(_FeatureDiscriminator):
    """Projection discriminator (Miyato & Koyama 2018): D(x, y) = psi(phi(x)) + <embed(y), phi(x)>."""

    def __init__(self, data_shape: tuple[int, ...], num_classes: int, features: int) -> None:
        super().__init__()
        self.data_shape, self.num_classes = tuple(data_shape), num_classes
        self.head = nn.Linear(features, 1)  # psi: the unconditional logit
        self.embed = nn.Embedding(num_classes, features)  # (K, F): one direction per class
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_labels(y, len(x), self.num_classes)
        phi = self.features(x)  # (N, F)
        projection = (self.embed(y).to(phi.dtype) * phi).sum(dim=1)  # (N,)
        return self.head(phi).squeeze(1) + projection  # (N,) logits


@NETS.register("proj_mlp_discriminator", "projection MLP discriminator (Miyato & Koyama 2018)")
class ProjectionMLPDiscriminator(_Projection):
    flat_input = True

    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # shape of one sample
        num_classes: int,  # K: labels are 0..K-1
        hidden: tuple[int, ...] = (256, 256, 256),  # widths of the hidden layers
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std feature before the output layer; 0: none
    ) -> None:
        trunk, features = _mlp_trunk(tuple(data_shape), hidden, negative_slope, minibatch_std)
        super().__init__(data_shape, num_classes, features)
        self.trunk = trunk


@NETS.register("proj_dcgan_discriminator", "projection DCGAN discriminator (Miyato & Koyama 2018)")
class ProjectionDCGANDiscriminator(_Projection):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        num_classes: int,  # K: labels are 0..K-1
        width: int = 64,  # channels of the first layer; doubled at each lower resolution
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std channel before the output layer; 0: none
        pooling: Literal[
            "flatten", "sum"
        ] = "flatten",  # phi: all feature maps, or summed over space (the paper)
    ) -> None:
        trunk, features = _dcgan_trunk(tuple(data_shape), width, negative_slope, minibatch_std)
        channels = features // (data_shape[1] // 2 ** halvings(data_shape[1])) ** 2
        super().__init__(data_shape, num_classes, channels if pooling == "sum" else features)
        self.trunk, self.sum_pool = trunk, pooling == "sum"
        dcgan_init(self.head)

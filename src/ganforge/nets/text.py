"""Text-conditional DCGAN nets (Reed et al. 2016, "Generative Adversarial Text to Image Synthesis").

Both nets squeeze a sentence embedding (N, text_dim) to `projection` features with a linear layer and a
LeakyReLU(0.2), as in the paper. G concatenates them to z; D joins them, copied over every position, to its
last feature maps and mixes both with a 1x1 convolution before the final logit. With `inner_product` D also
adds the projection discriminator's term (Miyato & Koyama 2018): the squeezed text's inner product with a
linear map of its last feature maps.

The paper squeezes to 128; here the default is 32. Our captions carry little (40 or 48 classes), and with
128 the generator on mnist5k-captions stopped using z within 250 steps: the spread of its samples over z
for a fixed caption was 0.04, against 0.20 with 32 (and 0.18 for cgan on mnist5k), measured at 300 steps
of the gancls-mnist5k preset.

The text comes in two ways:
- `forward(..., text=embeddings)`: any sentences, encoded by the encoder named in `encoder` (text.py).
- `forward(..., y=labels)` or no condition at all: the nets are also class-conditional over the captioned
  data's classes. `class_texts` (K, text_dim), a buffer the recipe fills and checkpoints carry, holds the
  embedding of each class's first phrasing; labels pick rows of it and no condition cycles the classes
  (0, 1, ..., K-1, 0, ...) like every conditional net of nets/conditional.py. So class grids, CAS, the
  class-histogram monitor and `--label` work on text runs unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.nets.base import NETS, assert_shape, configurable, dcgan_init
from ganforge.nets.conditional import check_labels, cycled_labels
from ganforge.nets.dcgan import DCGANDiscriminator, DCGANGenerator, _square_image

DEFAULT_TEXT_DIM = 256  # the built-in hashing encoder's size; the recipe passes the encoder's own


class _TextConditional(nn.Module):
    """What both nets share: the text squeezer and the per-class default texts."""

    class_texts: torch.Tensor

    def __init__(self, num_classes: int, text_dim: int, encoder: str, projection: int) -> None:
        super().__init__()
        self.num_classes, self.text_dim, self.encoder = num_classes, text_dim, encoder
        self.squeeze = nn.Sequential(nn.Linear(text_dim, projection), nn.LeakyReLU(0.2))
        self.register_buffer("class_texts", torch.zeros(num_classes, text_dim))  # filled by the recipe

    def condition(
        self, like: torch.Tensor, y: torch.Tensor | None, text: torch.Tensor | None
    ) -> torch.Tensor:
        """Return the (N, projection) squeezed text: `text` if given, else the texts of classes `y`."""
        if text is None:
            if y is None:
                y = cycled_labels(len(like), self.num_classes, like.device)
            check_labels(y, len(like), self.num_classes)
            text = self.class_texts[y]
        assert_shape(text, [len(like), self.text_dim], "text")
        return self.squeeze(text.to(like.dtype))


@NETS.register("text_dcgan_generator", "text-conditional DCGAN generator (Reed et al. 2016): [z, text]")
class TextDCGANGenerator(_TextConditional):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        latent_dim: int,  # size of z
        num_classes: int,  # K: the captioned data's classes (labels pick their first phrasing)
        text_dim: int = DEFAULT_TEXT_DIM,  # size of the sentence embeddings
        encoder: str = "hashing",  # the text encoder the embeddings come from (ganforge/text.py)
        projection: int = 32,  # size the text is squeezed to before joining z (see the module docstring)
        width: int = 64,  # channels of the last hidden layer; doubled at each lower resolution
    ) -> None:
        super().__init__(num_classes, text_dim, encoder, projection)
        self.data_shape, self.latent_dim = tuple(data_shape), latent_dim
        self.body = DCGANGenerator(data_shape, latent_dim + projection, width)
        dcgan_init(self.squeeze[0])

    def forward(
        self, z: torch.Tensor, y: torch.Tensor | None = None, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        assert_shape(z, [None, self.latent_dim], "z")
        joined = torch.cat([z, self.condition(z, y, text).to(z.dtype)], dim=1)  # (N, latent + projection)
        return self.body(joined)  # (N, C, S, S) in [-1, 1]


@NETS.register("text_dcgan_discriminator", "matching-aware DCGAN discriminator (Reed et al. 2016)")
class TextDCGANDiscriminator(_TextConditional):
    @configurable
    def __init__(
        self,
        data_shape: tuple[int, ...],  # (C, S, S)
        num_classes: int,  # K: the captioned data's classes
        text_dim: int = DEFAULT_TEXT_DIM,  # size of the sentence embeddings
        encoder: str = "hashing",  # the text encoder the embeddings come from
        projection: int = 32,  # size the text is squeezed to before joining the image features
        width: int = 64,  # channels of the first layer; doubled at each lower resolution
        negative_slope: float = 0.2,  # LeakyReLU slope
        minibatch_std: int = 0,  # group size of a minibatch-std channel before the joint layer; 0: none
        inner_product: bool = False,  # also add <text, W features> to the logit (projection D's term)
    ) -> None:
        super().__init__(num_classes, text_dim, encoder, projection)
        _square_image(data_shape)
        self.data_shape = tuple(data_shape)
        base = DCGANDiscriminator(data_shape, width, negative_slope, minibatch_std)
        last = base.body[-1]  # the (top, s0, s0) -> 1 convolution, replaced by the joint layers below
        self.trunk = nn.Sequential(*list(base.body)[:-1])  # image -> (N, top, s0, s0)
        top, start = last.in_channels, last.kernel_size[0]
        self.joint = nn.Sequential(
            nn.Conv2d(top + projection, top, 1, bias=False),
            nn.BatchNorm2d(top),
            nn.LeakyReLU(negative_slope, True),
            nn.Conv2d(top, 1, start, 1, 0, bias=False),  # -> (N, 1, 1, 1)
        )
        for module in [self.squeeze[0], *self.joint]:
            dcgan_init(module)
        # Miyato & Koyama's projection term, with the squeezed text in place of a class embedding and every
        # position of the last feature maps as features (a sum over positions would lose the place).
        self.inner = nn.Linear(top * start * start, projection, bias=False) if inner_product else None

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        assert_shape(x, [None, *self.data_shape], "x")
        features = self.trunk(x)  # (N, top, s0, s0)
        words = self.condition(x, y, text).to(features.dtype)  # (N, projection)
        tiled = words[:, :, None, None].expand(-1, -1, *features.shape[2:])  # the text at every position
        logits = self.joint(torch.cat([features, tiled], dim=1)).flatten()  # (N,) higher: real, matching
        if self.inner is not None:
            logits = logits + (self.inner(features.flatten(1)) * words).sum(dim=1)
        return logits

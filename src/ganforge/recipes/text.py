"""Text-to-image: GAN-CLS and GAN-INT (Reed et al. 2016, "Generative Adversarial Text to Image Synthesis").

G draws an image from noise and a sentence embedding; D scores (image, sentence) pairs. GAN-CLS makes D
matching-aware: besides real images with their own captions (real) and G's images with the captions they
were drawn for (fake), D sees real images with a wrong caption and must call those fake too, so G cannot win
with a sharp image that ignores the text. As in the paper's Algorithm 1, the fake side averages G's images
and the mismatched pairs, each weighing half. GAN-INT (`interpolate`) draws half of G's batch from the
midpoints of two captions' embeddings, which have no images: D scores them like any fake, so G learns to
draw something plausible between captions, and the embedding space it sees is filled in.

Captions come from captioned data (data/captions.py): each class has several phrasings, and every step
picks one at random for each image, so G and D meet varied wording. A wrong caption is a phrasing of
another class, so it differs in at least one attribute. Embeddings come from the text encoder of
`encoder` (ganforge/text.py), computed once when the recipe is built.

The objective, the gradient penalty (on mixes of real and fake images, scored with the real captions), R1
(real images with their classes' first phrasings), LeCam, instance noise, DiffAugment, label smoothing and
spectral norm work as in the other recipes; PacGAN and unrolled D are refused as for the conditional ones.
"""

from __future__ import annotations

import torch

from ganforge.data import Batch
from ganforge.errors import UserError
from ganforge.recipes.base import RECIPES, RecipeContext, Stats
from ganforge.recipes.conditional import ConditionalGAN
from ganforge.text import encode_texts, resolve_encoder, text_encoder


def matching_aware_fake_logits(fake_logits: torch.Tensor, mismatched_logits: torch.Tensor) -> torch.Tensor:
    """Return the logits an objective should treat as fake under GAN-CLS: G's images (B,) and real images
    with wrong captions (B,), as one (2B,) batch, so that each term weighs half of the fake side."""
    if fake_logits.shape != mismatched_logits.shape:
        raise ValueError(
            f"fake and mismatched logits must pair up, got {tuple(fake_logits.shape)} and "
            f"{tuple(mismatched_logits.shape)}"
        )
    return torch.cat([fake_logits, mismatched_logits])


@RECIPES.register("gancls", "Reed et al. 2016: text-to-image, matching-aware D (GAN-CLS) and GAN-INT")
class GANCLS(ConditionalGAN):
    image_nets = ("text_dcgan_generator", "text_dcgan_discriminator")
    point_nets = image_nets  # refused below: captioned data are images
    example_data = "shapes"
    conditioned_by = "text_dim"

    caption_texts: torch.Tensor  # (T, E) every phrasing of every class, class by class
    caption_start: torch.Tensor  # (K,) index of each class's first phrasing in caption_texts
    caption_count: torch.Tensor  # (K,) how many phrasings each class has

    def __init__(
        self,
        context: RecipeContext,
        encoder: str = "auto",  # text encoder: minilm, hashing, or auto (minilm when installed)
        interpolate: bool = True,  # GAN-INT: G also learns from midpoints of two captions' embeddings
    ) -> None:
        data = context.data
        if data.captions is None or data.kind != "images":
            raise UserError(
                f"data.name: gancls needs captioned images (mnist5k-captions, shapes), not {data.name!r}"
            )
        self.encoder = resolve_encoder(encoder)
        self.text_dim = text_encoder(self.encoder).dim
        self.interpolate = interpolate
        super().__init__(context)
        phrasings = [text for texts in data.captions for text in texts]
        counts = torch.tensor([len(texts) for texts in data.captions])
        self.register_buffer("caption_texts", encode_texts(self.encoder, phrasings), persistent=False)
        self.register_buffer("caption_count", counts, persistent=False)
        self.register_buffer("caption_start", counts.cumsum(0) - counts, persistent=False)
        with torch.no_grad():  # labels without text mean a class's first phrasing, in both nets
            for role in ("generator", "discriminator"):
                self.nets[role].class_texts.copy_(self.caption_texts[self.caption_start])

    def net_arguments(self, context: RecipeContext) -> dict[str, object]:
        return {"num_classes": self.num_classes, "text_dim": self.text_dim, "encoder": self.encoder}

    # -- captions -------------------------------------------------------------------------------------

    def captions_of(self, labels: torch.Tensor) -> torch.Tensor:
        """Return (N, E) embeddings of a phrasing, drawn uniformly, of each label's caption."""
        pick = (torch.rand(len(labels), device=labels.device) * self.caption_count[labels]).long()
        return self.caption_texts[self.caption_start[labels] + pick]

    def wrong_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Return (N,) labels of other classes, uniformly among the K - 1 others."""
        shift = torch.randint(1, self.num_classes, labels.shape, device=labels.device)
        return (labels + shift) % self.num_classes

    def scores(self, seen: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        # Logits in fp32 even under autocast: the losses take logs and exponents of them.
        return self.nets["discriminator"](seen, text=texts).float()

    # -- phases ---------------------------------------------------------------------------------------

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        labels = self.real_labels(batch)
        texts = self.captions_of(labels)  # (B, E) the real images' own captions
        wrong = self.captions_of(self.wrong_labels(labels))  # (B, E) captions of other classes
        with torch.no_grad():
            fake = self.nets["generator"](self.noise(len(batch), batch.x), text=texts)
        real_seen, fake_seen = self.seen(batch.x), self.seen(fake)
        match_logits, fake_logits = self.scores(real_seen, texts), self.scores(fake_seen, texts)
        mismatched_logits = self.scores(real_seen, wrong)
        loss, _ = self.adversarial_terms(
            match_logits,
            matching_aware_fake_logits(fake_logits, mismatched_logits),
            lambda seen: self.scores(seen, texts),
            real_seen,
            fake_seen,
        )
        # Stats of the pairs apart: D(G(z)) is G's images only, as the monitors expect.
        stats = {"loss_D": loss.detach(), **self._probability_stats(match_logits, fake_logits)}
        probabilities = self.objective.probabilities
        if probabilities is not None:
            stats["D(x, wrong text)"] = probabilities(match_logits.detach(), mismatched_logits.detach())[
                1
            ].mean()
        else:
            stats["critic(x, wrong text)"] = mismatched_logits.detach().mean()
        return loss, stats

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        labels = self.real_labels(batch)
        texts = self.captions_of(labels)
        if self.interpolate:  # half the batch on midpoints between its captions and a shuffled copy's
            half = len(batch) // 2
            mixed = 0.5 * (texts[:half] + texts.roll(1, dims=0)[:half])
            texts = torch.cat([mixed, texts[half:]])
        fake = self.nets["generator"](self.noise(len(batch), batch.x), text=texts)
        fake_logits = self.scores(self.seen(fake), texts)
        real_logits = None
        if self.objective.generator_uses_real:
            real_logits = self.scores(self.seen(batch.x), self.captions_of(labels))
        loss = self.objective.generator_loss(fake_logits, real_logits)
        return loss, {"loss_G": loss.detach()}

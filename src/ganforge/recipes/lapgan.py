"""LAPGAN (Denton et al. 2015, "Deep Generative Image Models using a Laplacian Pyramid of Adversarial
Networks"): one conditional GAN per level of a Laplacian pyramid; the nets are in nets/lapgan.py.

Training: the paper trains each level on its own, level k's generator conditioned on the REAL coarser image
l_k = up(I_{k-1}) of the real pyramid (never on a generated one), so the levels do not interact. Here all
levels train jointly, in one D phase and one G phase whose losses are the sums of the levels' losses, each
level on the real pyramid of the batch. That is the paper's independent training: level k's loss depends
only on G_k's and D_k's weights (its inputs are real images and its own noise), so the gradient of the sum
with respect to those weights is the gradient of level k's loss alone, and Adam's update of a weight reads
only that weight's gradient. The levels share batches, the step count and the learning rates, and nothing
else. Sampling goes coarse to fine from generated images only (the generator's `forward`).

Any registered objective works, level by level (D returns logits, higher means more real). Remedies: the
critic schedule (n_critic), weight clipping, the gradient penalty and lazy R1 (per level, on each level's D
input), spectral norm, instance noise (added to each level's D input), label smoothing, minibatch std (in
every level's D) and LeCam (one pair of anchors per level). Refused, with the field named: PacGAN, unrolled
D steps, DiffAugment (its colour and cutout policies would treat a coarse image and its band as one picture)
and FreezeD (D's "first layers" would be the coarsest level's only).

Stats: per level k, "D(x)@k" and "D(G(z))@k" (or "critic(x)@k", "critic(G(z))@k"), "loss_D@k" and "loss_G@k";
overall "loss_D" and "loss_G" are the sums over the levels, and "D(x)", "D(G(z))" (or the critic scores)
and any penalty are the means over the levels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ganforge.data import Batch
from ganforge.errors import UserError
from ganforge.nets import NETS
from ganforge.nets.lapgan import LapGANDiscriminator, LapGANGenerator, Pyramid, laplacian_pyramid
from ganforge.objectives.regularisers import (
    LeCamAnchors,
    full_precision_inside_fp16,
    lecam_penalty,
    r1_penalty,
)
from ganforge.recipes.base import RECIPES, RecipeContext, Stats
from ganforge.recipes.gan import AdversarialGAN
from ganforge.registry import name_of


@RECIPES.register(
    "lapgan", "Denton et al. 2015: a Laplacian pyramid of conditional GANs, sampled coarse to fine"
)
class LAPGAN(AdversarialGAN):
    default_generator = "lapgan_generator"
    default_discriminator = "lapgan_discriminator"
    example_data = "mnist5k"  # digits are 8x8: too small for a pyramid whose coarsest side is at least 7

    def __init__(
        self,
        context: RecipeContext,
        max_levels: int = 3,  # most pyramid levels, given to both nets (28 -> 7, 14, 28; 32 -> 8, 16, 32)
    ) -> None:
        self._refuse(context)
        self.max_levels = max_levels
        super().__init__(context)
        generator, discriminator = self.nets["generator"], self.nets["discriminator"]
        if generator.sizes != discriminator.sizes:  # only custom nets could disagree; ours get the same rule
            raise UserError(
                f"nets.discriminator: its pyramid {discriminator.sizes} differs from the generator's "
                f"{generator.sizes}"
            )
        self.sizes: list[int] = generator.sizes
        # LeCam's anchors are per level: each level's D has its own scale of scores. The base class's single
        # pair is dropped, so that its `adversarial_terms` adds no LeCam term of its own.
        self.lecam_anchors = None
        self.level_anchors = (
            nn.ModuleList(LeCamAnchors(self.stability.lecam_decay) for _ in self.sizes)
            if self.stability.lecam
            else None
        )

    def _refuse(self, context: RecipeContext) -> None:
        """Refuse the data, nets and remedies that a pyramid of per-level games cannot use."""
        data, section = context.data, context.config.stability
        if data.kind != "images":
            raise UserError(f"data.name: lapgan needs images, but {data.name!r} holds points")
        refused = {
            "pac": (section.pac > 1, "PacGAN's packs would mix the levels' pairs of coarse image and band"),
            "unrolled_steps": (bool(section.unrolled_steps), "not supported by lapgan"),
            "diffaugment": (
                bool(section.diffaugment),
                "lapgan's D sees a coarse image and its band as one input; augment the data (data.augment)",
            ),
            "freeze_d": (
                bool(section.freeze_d),
                "lapgan's D is one net per level; its first layers are level 0's",
            ),
        }
        for key, (on, why) in refused.items():
            if on:
                raise UserError(f"stability.{key}: {why}")
        for role, needed in (("generator", LapGANGenerator), ("discriminator", LapGANDiscriminator)):
            field = f"nets.{role}.name"
            cls = NETS.get(getattr(context.config.nets, role).name or f"lapgan_{role}", field)
            if not issubclass(cls, needed):
                raise UserError(
                    f"{field}: lapgan needs a pyramid net like lapgan_{role}, not {name_of(NETS, cls)}"
                )

    def net_arguments(self, context: RecipeContext) -> dict[str, object]:
        return {"max_levels": self.max_levels}

    # -- the pyramids D sees --------------------------------------------------------------------------

    def fake_bands(self, real: Pyramid, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return G's coarsest image (N, C, S_0, S_0) and its bands [(N, C, S_k, S_k)], each band made on
        the REAL upsampled coarser image l_k (the paper's training)."""
        generator = self.nets["generator"]
        shares = generator.split_noise(z)
        base = generator.base(shares[0])
        bands = [
            generator.band(k, upsampled, share)
            for k, (upsampled, share) in enumerate(zip(real.upsampled, shares[1:], strict=True), start=1)
        ]
        return base, bands

    def level_score(self, level: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """Return seen level inputs -> D_level's logits (N,), in fp32 (the losses take logs and exponents)."""
        discriminator = self.nets["discriminator"]
        return lambda seen: discriminator.level_logits(level, seen).float()

    def _inputs(self, batch: Batch) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Return the real and the generated inputs of every level's D (no gradient into G)."""
        discriminator = self.nets["discriminator"]
        real = laplacian_pyramid(batch.x, len(self.sizes))
        with torch.no_grad():
            base, bands = self.fake_bands(real, self.noise(len(batch), batch.x))
        fake = Pyramid(base, real.upsampled, tuple(bands))
        return discriminator.level_inputs(real), discriminator.level_inputs(fake)

    # -- phases ---------------------------------------------------------------------------------------

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        real_inputs, fake_inputs = self._inputs(batch)
        total, per_level = torch.zeros((), device=batch.x.device), []
        for level, (real, fake) in enumerate(zip(real_inputs, fake_inputs, strict=True)):
            score = self.level_score(level)
            real_seen, fake_seen = self.seen(real), self.seen(fake)
            real_logits, fake_logits = score(real_seen), score(fake_seen)  # (N,)
            loss, stats = self.adversarial_terms(real_logits, fake_logits, score, real_seen, fake_seen)
            if self.level_anchors is not None:
                anchors = self.level_anchors[level]
                penalty = lecam_penalty(real_logits, fake_logits, anchors.real, anchors.fake)
                anchors.update(real_logits, fake_logits)
                loss = loss + self.stability.lecam * penalty
                stats["lecam"] = penalty.detach()
            total = total + loss
            per_level.append(stats)
        return total, combined(per_level, ("D(x)", "D(G(z))", "critic(x)", "critic(G(z))", "loss_D"))

    def r1_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        """Lazy R1 on every level's real D input, summed over the levels (see AdversarialGAN.r1_loss)."""
        real_inputs = self.nets["discriminator"].level_inputs(laplacian_pyramid(batch.x, len(self.sizes)))
        total, per_level = torch.zeros((), device=batch.x.device), []
        for level, real in enumerate(real_inputs):
            real_seen = self.seen(real).detach().float().requires_grad_(True)
            with full_precision_inside_fp16(real_seen.device.type):
                penalty = r1_penalty(self.level_score(level)(real_seen), real_seen)
            total = total + penalty
            per_level.append({"r1": penalty.detach()})
        loss = 0.5 * self.stability.r1 * self.stability.r1_every * total
        return loss, combined(per_level, ())

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        discriminator = self.nets["discriminator"]
        real = laplacian_pyramid(batch.x, len(self.sizes))
        base, bands = self.fake_bands(real, self.noise(len(batch), batch.x))
        fake_inputs = discriminator.level_inputs(Pyramid(base, real.upsampled, tuple(bands)))
        real_inputs = discriminator.level_inputs(real) if self.objective.generator_uses_real else None
        total, per_level = torch.zeros((), device=batch.x.device), []
        for level, fake in enumerate(fake_inputs):
            score = self.level_score(level)
            real_logits = score(self.seen(real_inputs[level])) if real_inputs is not None else None
            loss = self.objective.generator_loss(score(self.seen(fake)), real_logits)
            total = total + loss
            per_level.append({"loss_G": loss.detach()})
        return total, combined(per_level, ("loss_G",))


def combined(per_level: list[Stats], shown: tuple[str, ...]) -> Stats:
    """Return the levels' stats joined: keys in `shown` also per level as "KEY@k"; overall, losses ("loss_*")
    summed over the levels and every other key averaged."""
    stats: Stats = {}
    for level, level_stats in enumerate(per_level):
        for key, value in level_stats.items():
            if key in shown:
                stats[f"{key}@{level}"] = value
    for key in per_level[0]:
        values = torch.stack([level_stats[key] for level_stats in per_level])
        stats[key] = values.sum() if key.startswith("loss_") else values.mean()
    return stats

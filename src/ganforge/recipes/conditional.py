"""Class-conditional GANs: cGAN (Mirza & Osindero 2014), AC-GAN (Odena et al. 2017) and the projection
discriminator (Miyato & Koyama 2018), on the machinery of the unconditional game (recipes/gan.py).

Labels: real samples keep their own (`Batch.y`); the labels G is asked for in the D and G phases are drawn
uniformly over the K classes (not from the data's label frequencies: the class grid and CAS sample classes
uniformly too, and the built-in labelled sets are balanced). Every objective and most remedies work as in
the unconditional recipes; PacGAN (packs mix classes) and unrolled D steps are refused.

Sign conventions as everywhere: D returns logits, higher means more real. AC-GAN's class terms are
cross-entropies, minimised by both players (Odena et al.'s L_C is maximised by both).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ganforge.data import Batch
from ganforge.errors import UserError
from ganforge.nets import NETS
from ganforge.nets.conditional import AuxiliaryClassifier
from ganforge.objectives.regularisers import full_precision_inside_fp16, r1_penalty
from ganforge.recipes.base import RECIPES, RecipeContext, Stats
from ganforge.recipes.gan import AdversarialGAN
from ganforge.registry import name_of

Scores = tuple[torch.Tensor, torch.Tensor | None]  # (real/fake logits (N,), class logits (N, K) or None)


def acgan_discriminator_class_loss(
    real_class_logits: torch.Tensor,  # (N, K) D's class logits on real samples
    real_labels: torch.Tensor,  # (N,) their labels
    fake_class_logits: torch.Tensor | None,  # (M, K) on generated samples; None: real term only
    fake_labels: torch.Tensor | None,  # (M,) the labels G was asked for
) -> torch.Tensor:
    """Return CE(real) + CE(fake), the mean cross-entropies of D's classifier: AC-GAN's -L_C for D."""
    loss = F.cross_entropy(real_class_logits, real_labels)
    if fake_class_logits is not None and fake_labels is not None:
        loss = loss + F.cross_entropy(fake_class_logits, fake_labels)
    return loss


def acgan_generator_class_loss(fake_class_logits: torch.Tensor, fake_labels: torch.Tensor) -> torch.Tensor:
    """Return the mean cross-entropy of D's classifier on G's samples for their intended labels: G's -L_C."""
    return F.cross_entropy(fake_class_logits, fake_labels)


class ConditionalGAN(AdversarialGAN):
    """A conditional game: G(z, y) and a D that sees the label (or classifies); the nets by data kind."""

    image_nets = ("cond_dcgan_generator", "cond_dcgan_discriminator")  # (G, D) for images
    point_nets = ("cond_mlp_generator", "cond_mlp_discriminator")  # (G, D) for points and other shapes
    auxiliary_classifier = False  # D returns class logits (acgan) instead of taking labels
    conditioned_by = "num_classes"  # the constructor argument that marks a net fit for this recipe
    example_data = "digits"

    def __init__(self, context: RecipeContext) -> None:
        data, name = context.data, context.config.recipe.name
        if not data.num_classes:
            raise UserError(f"recipe.name: {name} needs labelled data, but {data.name!r} has no labels")
        section = context.config.stability
        if section.pac > 1:
            raise UserError(f"stability.pac: {name} is class-conditional; PacGAN's packs would mix classes")
        if section.unrolled_steps:
            raise UserError(f"stability.unrolled_steps: not supported by the conditional recipe {name}")
        self.num_classes = data.num_classes
        self.default_generator, self.default_discriminator = (
            self.image_nets if data.kind == "images" else self.point_nets
        )
        self._check_nets(context, name)
        super().__init__(context)

    def _check_nets(self, context: RecipeContext, name: str) -> None:
        """Refuse unconditional nets, and discriminators of the other kind, with the flag's name."""
        for role, default in (
            ("generator", self.default_generator),
            ("discriminator", self.default_discriminator),
        ):
            field = f"nets.{role}.name"
            cls = NETS.get(getattr(context.config.nets, role).name or default, field)
            conditional = self.conditioned_by in inspect.signature(cls.__init__).parameters
            wrong_kind = role == "discriminator" and (
                issubclass(cls, AuxiliaryClassifier) != self.auxiliary_classifier
            )
            if not conditional or wrong_kind:
                raise UserError(f"{field}: {name} needs a net like {default}, not {name_of(NETS, cls)}")

    def net_arguments(self, context: RecipeContext) -> dict[str, object]:
        return {"num_classes": self.num_classes}

    def fake_labels(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """Return (n,) labels for G drawn uniformly over the classes, on `like`'s device."""
        return torch.randint(self.num_classes, (n,), device=like.device)

    def real_labels(self, batch: Batch) -> torch.Tensor:
        if batch.y is None:  # a labelled dataset always gives labels; this is a bug, not a user mistake
            raise RuntimeError("a conditional recipe got a batch without labels")
        return batch.y

    def conditional_scores(self, seen: torch.Tensor, labels: torch.Tensor) -> Scores:
        """Return D's logits (N,) for seen samples of these labels, and its class logits (N, K) or None."""
        discriminator = self.nets["discriminator"]
        # Logits in fp32 even under autocast: the losses take logs and exponents of them.
        if self.auxiliary_classifier:
            out = discriminator(seen).float()  # (N, 1 + K)
            return out[:, 0], out[:, 1:]
        return discriminator(seen, labels).float(), None

    def critic_for(self, labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """Return x -> D's logits with `labels` fixed (the gradient penalty mixes real and fake samples
        and scores the mixes with the real labels)."""
        return lambda seen: self.conditional_scores(seen, labels)[0]

    # -- phases ---------------------------------------------------------------------------------------

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        real_labels = self.real_labels(batch)
        fake_labels = self.fake_labels(len(batch), batch.x)
        with torch.no_grad():
            fake = self.nets["generator"](self.noise(len(batch), batch.x), fake_labels)
        real_seen, fake_seen = self.seen(batch.x), self.seen(fake)
        real_logits, real_classes = self.conditional_scores(real_seen, real_labels)
        fake_logits, fake_classes = self.conditional_scores(fake_seen, fake_labels)
        loss, stats = self.adversarial_terms(
            real_logits, fake_logits, self.critic_for(real_labels), real_seen, fake_seen
        )
        return self.discriminator_extra(loss, stats, real_classes, real_labels, fake_classes, fake_labels)

    def discriminator_extra(
        self,
        loss: torch.Tensor,
        stats: Stats,
        real_classes: torch.Tensor | None,
        real_labels: torch.Tensor,
        fake_classes: torch.Tensor | None,
        fake_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, Stats]:
        """Return D's loss and stats with recipe-specific terms added (none here)."""
        return loss, stats

    def r1_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        """Lazy R1 on real data with their labels, as in the unconditional recipes."""
        real_seen = self.seen(batch.x).detach().float().requires_grad_(True)
        with full_precision_inside_fp16(real_seen.device.type):
            penalty = r1_penalty(self.conditional_scores(real_seen, self.real_labels(batch))[0], real_seen)
        return 0.5 * self.stability.r1 * self.stability.r1_every * penalty, {"r1": penalty.detach()}

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        fake_labels = self.fake_labels(len(batch), batch.x)
        fake = self.nets["generator"](self.noise(len(batch), batch.x), fake_labels)
        fake_logits, fake_classes = self.conditional_scores(self.seen(fake), fake_labels)
        real_logits = None
        if self.objective.generator_uses_real:
            real_logits = self.conditional_scores(self.seen(batch.x), self.real_labels(batch))[0]
        loss = self.objective.generator_loss(fake_logits, real_logits)
        stats = {"loss_G": loss.detach()}
        return self.generator_extra(loss, stats, fake_classes, fake_labels)

    def generator_extra(
        self, loss: torch.Tensor, stats: Stats, fake_classes: torch.Tensor | None, fake_labels: torch.Tensor
    ) -> tuple[torch.Tensor, Stats]:
        """Return G's loss and stats with recipe-specific terms added (none here)."""
        return loss, stats


@RECIPES.register("cgan", "Mirza & Osindero 2014: label embedded into G (with z) and into D (as input)")
class CGAN(ConditionalGAN):
    pass


@RECIPES.register("acgan", "Odena et al. 2017: D also classifies; both players minimise its cross-entropy")
class ACGAN(ConditionalGAN):
    image_nets = ("cond_dcgan_generator", "ac_dcgan_discriminator")
    point_nets = ("cond_mlp_generator", "ac_mlp_discriminator")
    auxiliary_classifier = True

    def __init__(
        self,
        context: RecipeContext,
        class_weight: float = 1.0,  # weight of the class cross-entropies in both losses
        fake_class_loss: bool = True,  # D also learns to classify fakes by their intended labels (the paper)
    ) -> None:
        super().__init__(context)
        self.class_weight = class_weight
        self.fake_class_loss = fake_class_loss

    def discriminator_extra(
        self,
        loss: torch.Tensor,
        stats: Stats,
        real_classes: torch.Tensor | None,
        real_labels: torch.Tensor,
        fake_classes: torch.Tensor | None,
        fake_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, Stats]:
        assert real_classes is not None and fake_classes is not None
        if self.fake_class_loss:
            class_loss = acgan_discriminator_class_loss(real_classes, real_labels, fake_classes, fake_labels)
        else:
            class_loss = acgan_discriminator_class_loss(real_classes, real_labels, None, None)
        accuracy = (real_classes.detach().argmax(dim=1) == real_labels).float().mean()
        stats = {**stats, "class_loss_D": class_loss.detach(), "class_accuracy(x)": accuracy}
        return loss + self.class_weight * class_loss, stats

    def generator_extra(
        self, loss: torch.Tensor, stats: Stats, fake_classes: torch.Tensor | None, fake_labels: torch.Tensor
    ) -> tuple[torch.Tensor, Stats]:
        assert fake_classes is not None
        class_loss = acgan_generator_class_loss(fake_classes, fake_labels)
        return loss + self.class_weight * class_loss, {**stats, "class_loss_G": class_loss.detach()}


@RECIPES.register("projection", "Miyato & Koyama 2018: projection D, class-conditional batch norm in G")
class Projection(ConditionalGAN):
    image_nets = ("cbn_dcgan_generator", "proj_dcgan_discriminator")
    point_nets = ("cbn_mlp_generator", "proj_mlp_discriminator")

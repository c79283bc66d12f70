"""The adversarial game of Goodfellow et al. (2014): D every step, then G, with any registered objective.

`vanilla` plays it with MLPs; `dcgan` with the convolutional nets of Radford et al. (2015). Both take the
objective from the config (`minimax` or `nonsaturating`, and any later registered one).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.data import Batch
from ganforge.recipes.base import RECIPES, Phase, Recipe, RecipeContext, Stats


class AdversarialGAN(Recipe):
    """Unconditional GAN: one generator, one discriminator, alternating single steps."""

    default_generator = "mlp_generator"
    default_discriminator = "mlp_discriminator"

    def __init__(self, context: RecipeContext) -> None:
        super().__init__()
        shape, latent = context.data.shape, context.config.nets.latent_dim
        self.objective = context.objective
        self.nets = nn.ModuleDict(
            {
                "generator": context.net(
                    "generator", self.default_generator, data_shape=shape, latent_dim=latent
                ),
                "discriminator": context.net("discriminator", self.default_discriminator, data_shape=shape),
            }
        )
        self.groups = {"generator": ("generator",), "discriminator": ("discriminator",)}
        self.phases = (
            Phase("D", "discriminator", self.discriminator_loss),
            Phase("G", "generator", self.generator_loss),
        )

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        generator, discriminator = self.nets["generator"], self.nets["discriminator"]
        with torch.no_grad():
            fake = generator(self.noise(len(batch), batch.x))
        real_logits = discriminator(batch.x)  # (B,)
        fake_logits = discriminator(fake)  # (B,)
        loss = self.objective.discriminator_loss(real_logits, fake_logits)
        return loss, {
            "loss_D": loss.detach(),
            "D(x)": torch.sigmoid(real_logits.detach()).mean(),  # -> 0.5 at the equilibrium
            "D(G(z))": torch.sigmoid(fake_logits.detach()).mean(),
        }

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        fake = self.nets["generator"](self.noise(len(batch), batch.x))
        loss = self.objective.generator_loss(self.nets["discriminator"](fake), None)
        return loss, {"loss_G": loss.detach()}


@RECIPES.register("vanilla", "Goodfellow et al. 2014: MLP generator and discriminator")
class Vanilla(AdversarialGAN):
    example_data = "ring8"


@RECIPES.register("dcgan", "Radford et al. 2015: convolutional generator and discriminator")
class DCGAN(AdversarialGAN):
    default_generator = "dcgan_generator"
    default_discriminator = "dcgan_discriminator"
    example_data = "digits"

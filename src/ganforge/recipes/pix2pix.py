"""pix2pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks"): a
conditional GAN whose generator translates a source image into a target image; nets in nets/unet.py.

Data are pairs stored as one sample [source | target] on the channel axis (data/paired.py), so a batch's
`x` is exactly what D sees for real pairs. D scores concat(source, image) patch by patch (PatchGAN, logits
(N, P), higher means more real), and learns real pairs (source, target) against (source, G(source)).
G minimises the adversarial loss plus `l1_weight` times the mean absolute error to the target:

    loss_G = adversarial(D(source, G(source))) + l1_weight * mean |G(source) - target|

Any registered objective works; every objective's loss is a mean over the patch logits, the paper's
per-patch loss. There is no z: the paper found the generator ignores it, and keeps dropout as its only noise.

Remedies that act on D's scores work as in `AdversarialGAN`: the critic schedule (n_critic), weight
clipping, the gradient penalty, lazy R1 (on real pairs), spectral norm, instance noise, label smoothing and
LeCam. Refused, with the field named: PacGAN, minibatch std (D judges each pair on its own; PatchGAN has no
such layer), unrolled D steps and DiffAugment (augment the pairs with data.augment instead: it moves both
halves together). `nets.latent_dim` is not used. `sampling.jacobian_reject` and `evaluation.every` are
refused (both need a generator of noise).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.config import RunConfig
from ganforge.data import Batch, TensorData
from ganforge.data.paired import split_pairs
from ganforge.errors import UserError
from ganforge.nets import NETS
from ganforge.nets.unet import PatchGANDiscriminator, UNetGenerator
from ganforge.recipes.base import RECIPES, Recipe, RecipeContext, Stats
from ganforge.recipes.gan import AdversarialGAN
from ganforge.recipes.stability import stability_for
from ganforge.registry import name_of

PREVIEW_PAIRS = 16  # most training pairs shown in a sample grid
PREVIEW_SEED = 1234  # which training pairs those are


def refuse_noise_settings(
    config: RunConfig,
    recipe: str,
    generator: type[nn.Module],
    discriminator: type[nn.Module] = PatchGANDiscriminator,
) -> None:
    """Refuse, in one line naming the field, what needs a generator of noise (`sampling.jacobian_reject`,
    `evaluation.every`) and nets other than an image-to-image recipe's: `generator`'s and `discriminator`'s
    kinds (a PatchGAN by default)."""
    if config.sampling.jacobian_reject:
        raise UserError(f"sampling.jacobian_reject: {recipe}'s generators have no latents to truncate")
    if config.evaluation.every is not None:
        raise UserError(f"evaluation.every: the sample metrics need a generator of noise, not {recipe}'s")
    defaults = {"generator": (generator, RECIPES.get(recipe).default_generator)}
    defaults["discriminator"] = (discriminator, RECIPES.get(recipe).default_discriminator)
    for role, (needed, default) in defaults.items():
        field = f"nets.{role}.name"
        cls = NETS.get(getattr(config.nets, role).name or default, field)
        if not issubclass(cls, needed):
            raise UserError(f"{field}: {recipe} needs a net like {default}, not {name_of(NETS, cls)}")


def translation_loss(
    adversarial: torch.Tensor,  # scalar: the objective's generator loss on D's patch logits
    translated: torch.Tensor,  # G(source) (N, Ct, S, S)
    target: torch.Tensor,  # the real target (N, Ct, S, S)
    l1_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (adversarial + l1_weight * L1, L1), with L1 the mean absolute difference over every pixel."""
    l1 = (translated - target).abs().mean()
    return adversarial + l1_weight * l1, l1


@RECIPES.register("pix2pix", "Isola et al. 2017: paired image-to-image translation, U-Net G, PatchGAN D")
class Pix2Pix(AdversarialGAN):
    default_generator = "unet_generator"
    default_discriminator = "patchgan_discriminator"
    example_data = "edges-mnist5k"

    def __init__(
        self,
        context: RecipeContext,
        l1_weight: float = 100.0,  # lambda of the L1 term (the paper's 100)
    ) -> None:
        # Not AdversarialGAN.__init__: that builds a generator of noise. The phases and D's remedies are its.
        Recipe.__init__(self)
        pair_channels = self._refuse(context)
        if l1_weight < 0:
            raise UserError(f"recipe.options.l1_weight: must be at least 0, got {l1_weight}")
        self.l1_weight = l1_weight
        self.pair_channels = pair_channels
        self.objective = context.objective
        self.stability = stability_for(context)
        source_channels, target_channels = pair_channels
        side = context.data.shape[1:]
        generator = context.net(
            "generator",
            self.default_generator,
            data_shape=(target_channels, *side),
            source_channels=source_channels,
        )
        discriminator = context.net(
            "discriminator", self.default_discriminator, data_shape=context.data.shape
        )
        self.assemble(generator, discriminator)  # the D / Dreg / G phases and D's remedies, as for dcgan
        self._sources: torch.Tensor | None = None  # the training split's sources (bind_data)
        self._preview: torch.Tensor | None = None  # the fixed training pairs of the sample grids

    def _refuse(self, context: RecipeContext) -> tuple[int, int]:
        """Refuse unpaired data and the settings that make no sense for translation; return pair_channels."""
        data, config = context.data, context.config
        if data.pair_channels is None:
            raise UserError(
                f"data.name: pix2pix needs paired images (paired:DIR with DIR/A and DIR/B, or "
                f"edges-mnist5k), but {data.name!r} holds single {data.kind}"
            )
        if data.unpaired:
            raise UserError(
                f"data.name: pix2pix needs paired images, but {data.name!r} is unpaired (its A and B images "
                "are not matched); use paired:DIR, or recipe.name=cyclegan for unpaired data"
            )
        section = config.stability
        refused = {
            "pac": (
                section.pac > 1,
                "D judges each (source, image) pair on its own; not supported by pix2pix",
            ),
            "minibatch_std": (bool(section.minibatch_std), "not supported by pix2pix's PatchGAN"),
            "unrolled_steps": (bool(section.unrolled_steps), "not supported by pix2pix"),
            "diffaugment": (
                bool(section.diffaugment),
                "pix2pix's D sees source and image stacked; augment the pairs instead (data.augment)",
            ),
        }
        for key, (on, why) in refused.items():
            if on:
                raise UserError(f"stability.{key}: {why}")
        refuse_noise_settings(config, "pix2pix", UNetGenerator)
        return data.pair_channels

    # -- inputs outside the phases --------------------------------------------------------------------

    def bind_data(self, data: TensorData) -> None:
        source, _ = split_pairs(data.x, self.pair_channels)
        self._sources = source
        order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(PREVIEW_SEED))
        self._preview = data.x[order[:PREVIEW_PAIRS]]

    def noise(self, n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return n training sources (N, Cs, S, S), drawn with `generator`: G's inputs where the engine runs
        it outside the phases (batch-norm recalibration of the EMA copy, the monitors)."""
        if self._sources is None:
            raise RuntimeError("pix2pix draws its generator's inputs from the training pairs: call bind_data")
        device = generator.device if generator is not None else torch.device("cpu")
        index = torch.randint(len(self._sources), (n,), generator=generator, device=device).cpu()
        return self._sources[index].to(like.device)

    @torch.no_grad()
    def preview(self, generator: nn.Module, count: int) -> tuple[torch.Tensor, int] | None:
        """Return a grid of up to 16 fixed training pairs: sources on top, G's translations in the middle,
        targets below, one pair per column (grey sides shown as colour when the other side is colour)."""
        if self._preview is None:
            return None
        pairs = self._preview[: max(1, min(count, PREVIEW_PAIRS))]
        source, target = split_pairs(pairs, self.pair_channels)
        device = next(generator.parameters()).device
        was_training = generator.training
        generator.eval()
        try:
            translated = generator(source.to(device)).float().cpu()
        finally:
            generator.train(was_training)
        rows = [source, translated, target]
        channels = max(row.shape[1] for row in rows)
        rows = [row.expand(-1, channels, -1, -1) if row.shape[1] == 1 else row[:, :channels] for row in rows]
        return torch.cat(rows), len(pairs)

    # -- phases ---------------------------------------------------------------------------------------

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        source, _ = split_pairs(batch.x, self.pair_channels)
        with torch.no_grad():
            translated = self.nets["generator"](source)
        real_seen = self.seen(batch.x)  # a batch row is already the real pair (source, target)
        fake_seen = self.seen(torch.cat([source, translated.to(source.dtype)], dim=1))
        real_logits, fake_logits = self.score(real_seen), self.score(fake_seen)  # (N, P) patch logits
        return self.adversarial_terms(real_logits, fake_logits, self.score, real_seen, fake_seen)

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        source, target = split_pairs(batch.x, self.pair_channels)
        translated = self.nets["generator"](source)
        fake_logits = self.score(self.seen(torch.cat([source, translated.to(source.dtype)], dim=1)))
        real_logits = self.score(self.seen(batch.x)) if self.objective.generator_uses_real else None
        adversarial = self.objective.generator_loss(fake_logits, real_logits)
        loss, l1 = translation_loss(adversarial, translated.float(), target.float(), self.l1_weight)
        return loss, {"loss_G": loss.detach(), "loss_G_adv": adversarial.detach(), "l1": l1.detach()}

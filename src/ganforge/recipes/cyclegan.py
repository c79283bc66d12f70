"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks"): two generators G_AB: A -> B and G_BA: B -> A, and two discriminators, D_B judging images of B
(real ones against G_AB's) and D_A judging images of A. Nets in nets/cyclegan.py (G) and nets/unet.py (D,
pix2pix's PatchGAN built for one image: logits (N, P), higher means more real).

Data are stored as [A | B] samples (data/paired.py); for unpaired data (`unpaired:DIR`, `mnist5k-restyle`)
the halves were matched at random, and paired data is accepted too. Either way the recipe never uses the
match: each phase re-pairs the batch, giving its B halves a fresh random order (`unpair`), and no loss term
couples an A image with a B image anyway.

    loss_G = adv(D_B(G_AB(a))) + adv(D_A(G_BA(b)))
             + lambda_cycle * (mean |G_BA(G_AB(a)) - a| + mean |G_AB(G_BA(b)) - b|)
             + lambda_identity * (mean |G_AB(b) - b| + mean |G_BA(a) - a|)
    loss_D = D-loss(D_B(b), D_B(pool_B(G_AB(a)))) + D-loss(D_A(a), D_A(pool_A(G_BA(b))))

with `adv` and `D-loss` from the run's objective (the preset sets lsgan, the paper's choice). The paper's
code weights the identity term by 0.5 * lambda_cycle; that is the default here. Note that ganforge's lsgan
halves G's squared error (objectives/adversarial.py) where the paper's code does not, so with the same
lambdas ganforge's adversarial term weighs half as much against the cycle term as the paper's.

The discriminators learn from a history of fakes (Shrivastava et al. 2017), as in the paper: an `ImagePool`
per domain keeps `pool_size` past fakes; once full, each new fake is swapped, with probability 1/2, for a
random stored one, which D then sees instead. The pools are buffers of the recipe, so checkpoints keep them
and a resumed run continues exactly; their random draws come from torch's global CPU stream, which the
engine checkpoints too.

Remedies on D's scores that work: the critic schedule (n_critic), weight clipping, the gradient penalty,
spectral norm, instance noise, label smoothing, FreezeD. Refused with the field named: PacGAN, minibatch std,
unrolled D steps, DiffAugment, R1 and LeCam (two discriminators; not supported here). `sampling.
jacobian_reject` and `evaluation.every` are refused as for pix2pix. The engine's EMA follows G_AB only
(`nets["generator"]`); the preset keeps none, as the paper does.

Saving: `generator.safetensors` holds G_AB as for any run; `extra_generators` hands the engine G_BA, which
it writes to `generator_BtoA.safetensors` at every checkpoint (raw weights), so `ganforge translate
--direction BtoA` finds it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ganforge.data import Batch, TensorData
from ganforge.data.paired import split_pairs
from ganforge.errors import UserError
from ganforge.nets.cyclegan import CycleGANGenerator
from ganforge.nets.layers import apply_spectral_norm
from ganforge.objectives.regularisers import clip_weights_
from ganforge.recipes.base import RECIPES, Phase, Recipe, RecipeContext, Stats
from ganforge.recipes.gan import AdversarialGAN
from ganforge.recipes.pix2pix import refuse_noise_settings
from ganforge.recipes.stability import stability_for

PREVIEW_PAIRS = 16  # most images per domain shown in a sample grid
PREVIEW_SEED = 1234  # which training samples those are
REVERSE_GENERATOR_FILE = "generator_BtoA.safetensors"  # G_BA, beside the run's generator.safetensors (G_AB)


class ImagePool(nn.Module):
    """A history of up to `size` generated images (Shrivastava et al. 2017, as in CycleGAN's code).

    `query(images)` returns what D should see for a batch of new fakes: while the pool is filling, each new
    image is stored and returned as it is; once full, each is, with probability 1/2, stored in place of a
    random old image, which is returned instead, and otherwise returned as it is. With size 0 it is a no-op.
    The stored images and the fill count are buffers (saved in checkpoints).
    """

    images: torch.Tensor
    filled: torch.Tensor

    def __init__(self, size: int, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        if size < 0:
            raise ValueError(f"pool size must be at least 0, got {size}")
        self.size = size
        self.register_buffer("images", torch.zeros(size, *image_shape))  # (size, C, S, S)
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))  # how many slots hold an image

    @torch.no_grad()
    def query(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return a batch like `images` (N, C, S, S), mixing in past images; draws come from `generator`
        (a CPU generator; None: torch's global CPU stream)."""
        if self.size == 0:
            return images
        chosen = []
        for image in images.detach():
            filled = int(self.filled)
            if filled < self.size:
                self.images[filled] = image.float()
                self.filled += 1
                chosen.append(image)
            elif torch.rand((), generator=generator).item() < 0.5:
                slot = int(torch.randint(self.size, (), generator=generator))
                chosen.append(self.images[slot].to(image.dtype).clone())
                self.images[slot] = image.float()
            else:
                chosen.append(image)
        return torch.stack(chosen)


def cycle_loss(
    real_a: torch.Tensor,  # (N, Ca, S, S)
    back_a: torch.Tensor,  # G_BA(G_AB(real_a)), (N, Ca, S, S)
    real_b: torch.Tensor,  # (N, Cb, S, S)
    back_b: torch.Tensor,  # G_AB(G_BA(real_b)), (N, Cb, S, S)
) -> torch.Tensor:
    """Return mean |back_a - real_a| + mean |back_b - real_b|: the cycle-consistency loss (0 for a perfect
    round trip), each mean over every pixel of its domain."""
    return (back_a - real_a).abs().mean() + (back_b - real_b).abs().mean()


@RECIPES.register("cyclegan", "Zhu et al. 2017: unpaired image-to-image translation, two Gs, two Ds, cycles")
class CycleGAN(AdversarialGAN):
    default_generator = "cyclegan_generator"
    default_discriminator = "patchgan_discriminator"
    example_data = "mnist5k-restyle"

    def __init__(
        self,
        context: RecipeContext,
        lambda_cycle: float = 10.0,  # weight of the cycle-consistency L1 terms (the paper's 10)
        lambda_identity: float | None = None,  # weight of the identity terms; None: 0.5 * lambda_cycle
        pool_size: int = 50,  # past fakes per domain that D learns from (the paper's 50); 0: none
    ) -> None:
        # Not AdversarialGAN.__init__ (one generator of noise); its `seen` and `adversarial_terms` are used.
        Recipe.__init__(self)
        channels_a, channels_b = self._refuse(context)
        if lambda_identity is None:
            lambda_identity = 0.5 * lambda_cycle
        for key, value in (("lambda_cycle", lambda_cycle), ("lambda_identity", lambda_identity)):
            if value < 0:
                raise UserError(f"recipe.options.{key}: must be at least 0, got {value}")
        if lambda_identity > 0 and channels_a != channels_b:
            raise UserError(
                f"recipe.options.lambda_identity: the identity loss needs domains of equal channels, got "
                f"{channels_a} (A) and {channels_b} (B); set it to 0"
            )
        if pool_size < 0:
            raise UserError(f"recipe.options.pool_size: must be at least 0, got {pool_size}")
        self.lambda_cycle, self.lambda_identity = lambda_cycle, lambda_identity
        self.pair_channels = (channels_a, channels_b)
        self.objective = context.objective
        self.stability = tricks = stability_for(context)
        side = context.data.shape[1:]
        shape_a, shape_b = (channels_a, *side), (channels_b, *side)
        # Built in this order from the seeded RNG: G_AB, G_BA, D_A, D_B.
        generator_ab = context.net(
            "generator", self.default_generator, data_shape=shape_b, source_channels=channels_a
        )
        generator_ba = context.net(
            "generator", self.default_generator, data_shape=shape_a, source_channels=channels_b
        )
        discriminator_a = context.net("discriminator", self.default_discriminator, data_shape=shape_a)
        discriminator_b = context.net("discriminator", self.default_discriminator, data_shape=shape_b)
        if tricks.spectral_norm:
            apply_spectral_norm(discriminator_a)
            apply_spectral_norm(discriminator_b)
        self.nets = nn.ModuleDict(
            {
                "generator": generator_ab,  # "generator" is the one the engine samples, saves and averages
                "generator_ba": generator_ba,
                "discriminator_a": discriminator_a,
                "discriminator_b": discriminator_b,
            }
        )
        self.groups = {
            "generator": ("generator", "generator_ba"),
            "discriminator": ("discriminator_a", "discriminator_b"),
        }
        self.pool_a, self.pool_b = ImagePool(pool_size, shape_a), ImagePool(pool_size, shape_b)
        self.lecam_anchors = None  # refused; adversarial_terms reads it
        self.unrolled_moments = None
        clip = tricks.weight_clip

        def clip_both() -> None:
            clip_weights_(discriminator_a, clip)
            clip_weights_(discriminator_b, clip)

        self.phases = (
            Phase("D", "discriminator", self.discriminator_loss, after_step=clip_both if clip else None),
            Phase("G", "generator", self.generator_loss, interval=tricks.n_critic),
        )
        self._sources: torch.Tensor | None = None  # the training split's A images (bind_data)
        self._preview: torch.Tensor | None = None  # fixed training samples of the sample grids

    def _refuse(self, context: RecipeContext) -> tuple[int, int]:
        """Refuse data and settings CycleGAN cannot use; return the channels of A and B."""
        data, config = context.data, context.config
        if data.pair_channels is None:
            raise UserError(
                f"data.name: cyclegan needs images of two domains (unpaired:DIR with DIR/A and DIR/B, or "
                f"mnist5k-restyle), but {data.name!r} holds single {data.kind}"
            )
        section = config.stability
        refused = {
            "pac": section.pac > 1,
            "minibatch_std": bool(section.minibatch_std),
            "unrolled_steps": bool(section.unrolled_steps),
            "diffaugment": bool(section.diffaugment),
            "r1": bool(section.r1),
            "lecam": bool(section.lecam),
        }
        for key, on in refused.items():
            if on:
                raise UserError(f"stability.{key}: not supported by cyclegan (two discriminators)")
        refuse_noise_settings(config, "cyclegan", CycleGANGenerator)
        return data.pair_channels

    # -- inputs outside the phases --------------------------------------------------------------------

    def bind_data(self, data: TensorData) -> None:
        self._sources, _ = split_pairs(data.x, self.pair_channels)
        order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(PREVIEW_SEED))
        self._preview = data.x[order[:PREVIEW_PAIRS]]

    def noise(self, n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return n training images of domain A (N, Ca, S, S), drawn with `generator`: G_AB's inputs where
        the engine runs it outside the phases (batch-norm recalibration of the EMA copy, the monitors)."""
        if self._sources is None:
            raise RuntimeError("cyclegan draws its generator's inputs from the training data: call bind_data")
        device = generator.device if generator is not None else torch.device("cpu")
        index = torch.randint(len(self._sources), (n,), generator=generator, device=device).cpu()
        return self._sources[index].to(like.device)

    def extra_generators(self) -> dict[str, nn.Module]:
        return {REVERSE_GENERATOR_FILE: self.nets["generator_ba"]}

    @torch.no_grad()
    def preview(self, generator: nn.Module, count: int) -> tuple[torch.Tensor, int] | None:
        """Return a grid of up to 16 fixed training samples per domain, one per column, in four rows:
        A, G_AB(A), B, G_BA(B) (grey images shown as colour when the other domain is colour)."""
        if self._preview is None:
            return None
        real_a, real_b = split_pairs(self._preview[: max(1, min(count, PREVIEW_PAIRS))], self.pair_channels)
        rows = [real_a, _run(generator, real_a), real_b, _run(self.nets["generator_ba"], real_b)]
        channels = max(row.shape[1] for row in rows)
        rows = [row.expand(-1, channels, -1, -1) if row.shape[1] == 1 else row[:, :channels] for row in rows]
        return torch.cat(rows), len(real_a)

    # -- phases ---------------------------------------------------------------------------------------

    def unpair(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the (A, B) halves of a batch (N, Ca + Cb, S, S), the B halves in a fresh random order (from
        torch's global CPU stream), so that no loss can see how the samples were matched."""
        real_a, real_b = split_pairs(x, self.pair_channels)
        order = torch.randperm(len(x)).to(x.device)
        return real_a, real_b[order]

    def _discriminator(self, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
        net = self.nets[name]
        return lambda seen: net(seen).float()  # (N, P) patch logits, fp32 for the losses

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        real_a, real_b = self.unpair(batch.x)
        with torch.no_grad():
            fake_b = self.nets["generator"](real_a).to(real_a.dtype)
            fake_a = self.nets["generator_ba"](real_b).to(real_b.dtype)
        total, stats = torch.zeros((), device=batch.x.device), {}
        for domain, real, fake, pool in (
            ("A", real_a, fake_a, self.pool_a),
            ("B", real_b, fake_b, self.pool_b),
        ):
            critic = self._discriminator(f"discriminator_{domain.lower()}")
            real_seen, fake_seen = self.seen(real), self.seen(pool.query(fake))
            loss, terms = self.adversarial_terms(
                critic(real_seen), critic(fake_seen), critic, real_seen, fake_seen
            )
            total = total + loss
            for key, value in terms.items():  # D(x), D(G(z)): the mean over both Ds, for the monitors
                stats[key] = stats.get(key, 0.0) + value / 2
            stats[f"loss_D_{domain}"] = loss.detach()
        stats["loss_D"] = total.detach()
        return total, stats

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        real_a, real_b = self.unpair(batch.x)
        generator_ab, generator_ba = self.nets["generator"], self.nets["generator_ba"]
        fake_b, fake_a = generator_ab(real_a), generator_ba(real_b)
        adversarial = torch.zeros((), device=batch.x.device)
        for domain, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
            critic = self._discriminator(f"discriminator_{domain}")
            real_logits = critic(self.seen(real)) if self.objective.generator_uses_real else None
            adversarial = adversarial + self.objective.generator_loss(critic(self.seen(fake)), real_logits)
        cycle = cycle_loss(real_a, generator_ba(fake_b).float(), real_b, generator_ab(fake_a).float())
        loss = adversarial + self.lambda_cycle * cycle
        stats = {"loss_G_adv": adversarial.detach(), "cycle": cycle.detach()}
        if self.lambda_identity > 0:
            identity = (generator_ab(real_b).float() - real_b).abs().mean()
            identity = identity + (generator_ba(real_a).float() - real_a).abs().mean()
            loss = loss + self.lambda_identity * identity
            stats["identity"] = identity.detach()
        return loss, {"loss_G": loss.detach(), **stats}


def _run(net: nn.Module, source: torch.Tensor) -> torch.Tensor:
    """Return net(source) on the CPU in fp32, run in eval mode on the net's device."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        return net(source.to(device)).float().cpu()
    finally:
        net.train(was_training)

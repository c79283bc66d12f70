"""The adversarial game of Goodfellow et al. (2014), with the stability toolbox: any registered objective,
and every remedy of the `stability` config section.

`vanilla` plays it with MLPs; `dcgan` with the convolutional nets of Radford et al. (2015).

What D sees: each real or fake batch is augmented (DiffAugment), noised (instance noise), then packed
(PacGAN) before the discriminator net scores it. Phases: D every step (with the gradient penalty and LeCam
terms when on, and weight clipping after its step), lazy R1 as its own phase every `r1_every` steps, and G
every `n_critic` steps, optionally against a discriminator unrolled `unrolled_steps` steps ahead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from ganforge.data import Batch
from ganforge.nets import NETS
from ganforge.nets.layers import apply_spectral_norm
from ganforge.objectives.diffaugment import diff_augment
from ganforge.objectives.regularisers import (
    LeCamAnchors,
    add_instance_noise,
    clip_weights_,
    full_precision_inside_fp16,
    gradient_penalty,
    instance_noise_std,
    lecam_penalty,
    pack,
    r1_penalty,
)
from ganforge.recipes.base import RECIPES, Phase, Recipe, RecipeContext, Stats
from ganforge.recipes.stability import discriminator_options, stability_for

Params = dict[str, torch.Tensor]


class AdamMoments(nn.Module):
    """Running Adam moments (m, v and the update count) of a net's gradients, kept as buffers so that they
    follow the recipe's device and are saved in checkpoints."""

    count: torch.Tensor

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        shapes = [p.shape for p in net.parameters()]
        for i, shape in enumerate(shapes):
            self.register_buffer(f"first_{i}", torch.zeros(shape))
            self.register_buffer(f"second_{i}", torch.zeros(shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.size = len(shapes)

    @property
    def first(self) -> list[torch.Tensor]:
        return [getattr(self, f"first_{i}") for i in range(self.size)]

    @property
    def second(self) -> list[torch.Tensor]:
        return [getattr(self, f"second_{i}") for i in range(self.size)]

    @torch.no_grad()
    def update(self, grads: list[torch.Tensor], beta1: float, beta2: float) -> None:
        """Fold one gradient per weight tensor into the moments, as one Adam step would."""
        for m, v, g in zip(self.first, self.second, grads, strict=True):
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        self.count += 1


class AdversarialGAN(Recipe):
    """Unconditional GAN: one generator, one discriminator, with the configured remedies."""

    default_generator = "mlp_generator"
    default_discriminator = "mlp_discriminator"

    def __init__(self, context: RecipeContext) -> None:
        super().__init__()
        data, latent = context.data, context.config.nets.latent_dim
        self.objective = context.objective
        self.stability = tricks = stability_for(context)
        # G is built first: the nets' initial weights come from the seeded RNG in this order.
        extra = self.net_arguments(context)
        generator = context.net(
            "generator", self.default_generator, data_shape=data.shape, latent_dim=latent, **extra
        )
        d_class = NETS.get(
            context.config.nets.discriminator.name or self.default_discriminator, "nets.discriminator.name"
        )
        discriminator = context.net(
            "discriminator",
            self.default_discriminator,
            **discriminator_options(tricks, data, d_class),
            **extra,
        )
        self.assemble(generator, discriminator)

    def assemble(self, generator: nn.Module, discriminator: nn.Module) -> None:
        """Hold one G and one D with the D-side remedies of `self.stability` and the D / Dreg / G phases.
        Recipes that build other nets (pix2pix's U-Net and PatchGAN) call this too."""
        tricks = self.stability
        if tricks.spectral_norm:
            apply_spectral_norm(discriminator)
        self.nets = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
        self.groups = {"generator": ("generator",), "discriminator": ("discriminator",)}
        # The anchors are training state (saved in checkpoints) but not a net: they live beside `nets`.
        self.lecam_anchors = LeCamAnchors(tricks.lecam_decay) if tricks.lecam else None
        self.unrolled_moments = AdamMoments(discriminator) if tricks.unrolled_steps else None
        clip = tricks.weight_clip
        phases = [
            Phase(
                "D",
                "discriminator",
                self.discriminator_loss,
                after_step=(lambda: clip_weights_(discriminator, clip)) if clip else None,
            )
        ]
        if tricks.r1:
            phases.append(Phase("Dreg", "discriminator", self.r1_loss, interval=tricks.r1_every))
        phases.append(Phase("G", "generator", self.generator_loss, interval=tricks.n_critic))
        self.phases = tuple(phases)

    def net_arguments(self, context: RecipeContext) -> dict[str, object]:
        """Return the run-set constructor arguments both nets get beyond the data shape (none here)."""
        return {}

    # -- what D sees ----------------------------------------------------------------------------------

    def seen(self, x: torch.Tensor) -> torch.Tensor:
        """Return `x` as D sees it: augmented and noised (both differentiable in `x`)."""
        tricks = self.stability
        if tricks.diffaugment:
            x = diff_augment(x, tricks.diffaugment)
        if tricks.instance_noise:
            x = add_instance_noise(
                x, instance_noise_std(tricks.instance_noise, self.step, tricks.instance_noise_steps)
            )
        return x

    def score(self, seen: torch.Tensor, params: Params | None = None) -> torch.Tensor:
        """Return D's logits for already-seen samples, packed `pac` to one score: (B / pac,)."""
        discriminator = self.nets["discriminator"]
        packed = pack(seen, self.stability.pac) if self.stability.pac > 1 else seen
        # Logits in fp32 even under autocast: the losses take logs and exponents of them.
        if params is None:
            return discriminator(packed).float()
        return functional_call(discriminator, params, (packed,)).float()

    def _probability_stats(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> Stats:
        real_logits, fake_logits = real_logits.detach(), fake_logits.detach()
        if self.objective.probabilities is None:  # a critic: its raw scores and their gap
            return {
                "critic(x)": real_logits.mean(),
                "critic(G(z))": fake_logits.mean(),
                "wasserstein": real_logits.mean() - fake_logits.mean(),
            }
        real_p, fake_p = self.objective.probabilities(real_logits, fake_logits)
        return {"D(x)": real_p.mean(), "D(G(z))": fake_p.mean()}  # -> 0.5 at the equilibrium

    # -- phases ---------------------------------------------------------------------------------------

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        with torch.no_grad():
            fake = self.nets["generator"](self.noise(len(batch), batch.x))
        real_seen, fake_seen = self.seen(batch.x), self.seen(fake)
        real_logits, fake_logits = self.score(real_seen), self.score(fake_seen)  # (B / pac,)
        return self.adversarial_terms(real_logits, fake_logits, self.score, real_seen, fake_seen)

    def adversarial_terms(
        self,
        real_logits: torch.Tensor,
        fake_logits: torch.Tensor,
        critic: Callable[[torch.Tensor], torch.Tensor],
        real_seen: torch.Tensor,
        fake_seen: torch.Tensor,
    ) -> tuple[torch.Tensor, Stats]:
        """Return D's adversarial loss with the configured penalties (gradient penalty, LeCam), and stats.

        `critic` scores seen samples (the gradient penalty calls it on mixes of `real_seen` and `fake_seen`).
        """
        tricks = self.stability
        if tricks.real_label != 1.0:
            loss = self.objective.discriminator_loss(real_logits, fake_logits, real_label=tricks.real_label)
        else:
            loss = self.objective.discriminator_loss(real_logits, fake_logits)
        stats = {"loss_D": loss.detach(), **self._probability_stats(real_logits, fake_logits)}
        if tricks.gradient_penalty:
            penalty = gradient_penalty(critic, real_seen, fake_seen)
            loss = loss + tricks.gradient_penalty * penalty
            stats["gradient_penalty"] = penalty.detach()
        if self.lecam_anchors is not None:
            penalty = lecam_penalty(
                real_logits, fake_logits, self.lecam_anchors.real, self.lecam_anchors.fake
            )
            self.lecam_anchors.update(real_logits, fake_logits)
            loss = loss + tricks.lecam * penalty
            stats["lecam"] = penalty.detach()
        return loss, stats

    def r1_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        """Lazy R1 (Mescheder et al. 2018): gamma/2 E||grad D(x)||^2 on real data, scaled by its interval
        so that the average pull matches an R1 term applied every step (StyleGAN2's lazy regularisation)."""
        real_seen = self.seen(batch.x).detach().float().requires_grad_(True)
        with full_precision_inside_fp16(real_seen.device.type):
            penalty = r1_penalty(self.score(real_seen), real_seen)
        return 0.5 * self.stability.r1 * self.stability.r1_every * penalty, {"r1": penalty.detach()}

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        fake = self.nets["generator"](self.noise(len(batch), batch.x))
        fake_seen = self.seen(fake)
        params = self._unrolled(batch, fake_seen) if self.stability.unrolled_steps else None
        fake_logits = self.score(fake_seen, params)
        real_logits = None
        if self.objective.generator_uses_real:
            real_logits = self.score(self.seen(batch.x), params)
        loss = self.objective.generator_loss(fake_logits, real_logits)
        return loss, {"loss_G": loss.detach()}

    def _unrolled(self, batch: Batch, fake_seen: torch.Tensor) -> Params:
        """Return D's weights after `unrolled_steps` simulated Adam steps on its own loss (Metz et al. 2017).

        As in the paper's code, the simulation unrolls D's optimizer, Adam (bias-corrected moments, eps 1e-8),
        with D's betas and `unrolled_lr` (by default D's configured peak learning rate; a schedule's decay is
        not followed). The paper starts from the optimizer's live moments. A recipe does not see the engine's
        optimizer, so it keeps its own running moments of D's gradient (`unrolled_moments`), fed once per
        call with the gradient of the first simulated step. Moments started from zero instead make the
        first steps sign(g) steps whose derivative grows like 1/|g|: G's look-ahead term then swamps its
        direct gradient, and on ring8 G lost every mode.

        The steps are differentiable (create_graph), so G's gradient sees how D would answer its move. D's
        real weights and buffers are untouched: the simulation runs on copies. Each simulated step reuses
        this batch's real and fake samples, as the paper's code does.
        """
        tricks, moments = self.stability, self.unrolled_moments
        assert moments is not None and tricks.unrolled_lr is not None
        lr, (beta1, beta2), eps = tricks.unrolled_lr, tricks.unrolled_betas, 1e-8
        discriminator = self.nets["discriminator"]
        params: Params = {
            name: p.detach().requires_grad_(True) for name, p in discriminator.named_parameters()
        }
        buffers: Params = {name: b.clone() for name, b in discriminator.named_buffers()}
        # Adam's m and v, one per weight tensor; copies, as the running moments are updated in place below.
        first, second = [m.clone() for m in moments.first], [v.clone() for v in moments.second]
        done = int(moments.count)
        real_seen = self.seen(batch.x)
        for step in range(1, tricks.unrolled_steps + 1):
            state = {**params, **buffers}
            real_logits, fake_logits = self.score(real_seen, state), self.score(fake_seen, state)
            loss = self.objective.discriminator_loss(real_logits, fake_logits)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            if step == 1:
                moments.update([g.detach() for g in grads], beta1, beta2)
            for i, ((name, p), g) in enumerate(zip(list(params.items()), grads, strict=True)):
                first[i] = beta1 * first[i] + (1 - beta1) * g
                second[i] = beta2 * second[i] + (1 - beta2) * g * g
                m_hat = first[i] / (1 - beta1 ** (done + step))
                v_hat = second[i] / (1 - beta2 ** (done + step))
                # The floor only keeps sqrt's derivative finite where a weight's gradient is exactly 0;
                # above it the step is torch's Adam step, up to rounding.
                params[name] = p - lr * m_hat / (v_hat.clamp_min(1e-30).sqrt() + eps)
        return {**params, **buffers}


@RECIPES.register("vanilla", "Goodfellow et al. 2014: MLP generator and discriminator")
class Vanilla(AdversarialGAN):
    example_data = "ring8"


@RECIPES.register("dcgan", "Radford et al. 2015: convolutional generator and discriminator")
class DCGAN(AdversarialGAN):
    default_generator = "dcgan_generator"
    default_discriminator = "dcgan_discriminator"
    example_data = "digits"

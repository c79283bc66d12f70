"""Recipes: the GAN maths of one variant, as nets plus phases. A recipe never touches an optimizer.

The engine runs, at every training step, each phase whose `interval` divides the step number: it turns on
gradients for the nets of the phase's optimizer group only, calls `phase.loss(batch)`, back-propagates and
steps that group's optimizer. So a WGAN critic with 5 steps per generator step is
`Phase("D", "discriminator")` with `Phase("G", "generator", interval=5)`; a lazy R1 penalty is a
`Phase("Dreg", "discriminator", interval=16)`; CycleGAN puts both generators in the "generator" group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ganforge.config import RunConfig
from ganforge.data import Batch, DataInfo, TensorData
from ganforge.errors import UserError
from ganforge.nets import build_net
from ganforge.objectives import OBJECTIVES, Objective
from ganforge.registry import Registry

Group = Literal["generator", "discriminator"]
Stats = dict[str, torch.Tensor]  # detached scalars to log, e.g. {"loss_D": ..., "D(x)": ...}


@dataclass(frozen=True)
class Phase:
    """One optimisation step of one group, run at the steps where `step % interval == 0` from `start` on."""

    name: str  # shown in logs and errors: "D", "G", "Dreg", ...
    group: Group  # whose optimizer steps after this phase's backward
    loss: Callable[[Batch], tuple[torch.Tensor, Stats]]  # returns (scalar loss to minimise, stats)
    interval: int = 1
    start: int = 0  # the first step it may run at (SRGAN's D waits for the generator's MSE pre-training)
    after_step: Callable[[], None] | None = None  # run after the optimizer step (e.g. WGAN weight clipping)


@dataclass
class RecipeContext:
    """What a recipe is built from: the run's config and the data's description."""

    config: RunConfig
    data: DataInfo
    objective: Objective = field(init=False)

    def __post_init__(self) -> None:
        self.objective = OBJECTIVES.get(self.config.objective.name or "", "objective.name")

    def net(self, role: Literal["generator", "discriminator"], default: str, **context: Any) -> nn.Module:
        """Build the net configured for `role` (or the recipe's `default`) with the run's `context`."""
        chosen = getattr(self.config.nets, role)
        return build_net(chosen.name or default, chosen.options, f"nets.{role}", **context)


class Recipe(nn.Module):
    """Base class: subclasses build `self.nets`, `self.groups` and `self.phases` in `__init__`.

    `nets` holds every network by name (saved in checkpoints); `groups` says which nets each optimizer
    owns; the net called "generator" is the one that samples (and gets the EMA copy).
    """

    nets: nn.ModuleDict
    groups: dict[Group, tuple[str, ...]]
    phases: tuple[Phase, ...]
    example_data: str = "digits"  # a small built-in dataset the recipe fits (quick tries, shared tests)
    step: int = 0  # the training step being run; the engine sets it (annealed schedules read it)

    @property
    def generator(self) -> nn.Module:
        return self.nets["generator"]

    def parameters_of(self, group: Group) -> list[nn.Parameter]:
        return [p for name in self.groups[group] for p in self.nets[name].parameters()]

    def noise(self, n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return z ~ N(0, I) of shape (n, latent_dim) on `like`'s device (from `generator` if given).

        More generally: n inputs of the generator, as the engine feeds it when it runs G outside the
        phases (batch-norm recalibration of the EMA copy, monitors); a translating recipe gives images.
        """
        return torch.randn(n, self.generator.latent_dim, device=like.device, generator=generator)

    def bind_data(self, data: TensorData) -> None:
        """Take the training split; the Trainer calls this once, before training. Most recipes need nothing
        (pix2pix draws the generator's inputs and the pairs of its sample grids from it)."""

    def extra_generators(self) -> dict[str, nn.Module]:
        """Return generators to export beside `generator.safetensors`, by file name (raw weights, written at
        every checkpoint); none by default. CycleGAN's second generator (B to A) is one."""
        return {}

    def preview(self, generator: nn.Module, count: int) -> tuple[torch.Tensor, int] | None:
        """Return (images, columns) for the run's sample grid, made with `generator` (the EMA copy when the
        run keeps one) from about `count` inputs; None (the default): samples from fixed noise."""
        return None


RECIPES: Registry[type[Recipe]] = Registry("recipe")


def build_recipe(config: RunConfig, data: DataInfo) -> Recipe:
    """Return the configured recipe, built for `data`; bad recipe options raise a UserError."""
    cls = RECIPES.get(config.recipe.name or "", "recipe.name")
    context = RecipeContext(config, data)
    try:
        return cls(context, **config.recipe.options)
    except TypeError as exc:
        raise UserError(f"recipe.options: {exc}") from None

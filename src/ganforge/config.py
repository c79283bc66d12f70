"""Typed run configuration: one pydantic model per section, the single source of truth for defaults.

A config is resolved from (in order, later wins) the defaults below, a preset, a YAML file, a dict and
`key=value` overrides. The resolved config is what a run folder stores as `config.yaml`.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ganforge.errors import UserError


class Section(BaseModel):
    """Base for config sections: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Named(Section):
    """A registry entry chosen by name, with keyword options for its constructor."""

    name: str | None = None  # registry name; None means "the recipe's default"
    options: dict[str, Any] = Field(default_factory=dict)  # constructor keyword arguments, checked there

    @model_validator(mode="before")
    @classmethod
    def _accept_bare_name(cls, value: Any) -> Any:
        # `recipe: dcgan` in YAML is short for `recipe: {name: dcgan}`.
        return {"name": value} if isinstance(value, str) else value


class RecipeConfig(Named):
    name: str | None = "dcgan"  # GAN variant: see `ganforge list recipes`


class ObjectiveConfig(Named):
    name: str | None = "nonsaturating"  # adversarial loss: see `ganforge list objectives`


class DataConfig(Section):
    name: str = "mnist5k"  # registered dataset, or folder:PATH, or npz:PATH (`ganforge list datasets`)
    image_size: int | None = Field(None, ge=4, le=1024)  # side of square images; None keeps the data's own
    channels: Literal["auto", "grayscale", "rgb"] = "auto"  # colour mode for folder data
    num_samples: int = Field(50_000, ge=16)  # samples drawn for ring8, grid25 and stacked-mnist5k
    holdout: float = Field(0.0, ge=0, le=0.5)  # fraction kept out of training, for evaluation (memorisation)
    seed: int = Field(
        0, ge=0, lt=2**32
    )  # seed of the toy mixtures' points; fixed: every run sees the same data
    cache: bool = True  # keep folder:PATH images decoded in cache_dir; false decodes them on every run
    cache_dir: str | None = None  # folder of that cache; None: $GANFORGE_CACHE, else ~/.cache/ganforge
    augment: list[Literal["hflip", "translate"]] = []  # random mirror/shift of real image batches, in order


class NetsConfig(Section):
    latent_dim: int = Field(100, ge=1)  # size of the noise vector z ~ N(0, I)
    generator: Named = Field(default_factory=Named)  # G: name from `ganforge list nets`, None = recipe's
    discriminator: Named = Field(default_factory=Named)  # D, likewise


class OptimizerConfig(Section):
    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = Field(2e-4, gt=0, le=10)  # peak learning rate
    betas: tuple[float, float] = (0.5, 0.999)  # Adam/AdamW; beta1 = 0.5 as in DCGAN (Radford et al. 2015)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1)  # SGD and RMSprop only
    schedule: Literal["constant", "linear", "cosine"] = "constant"  # decay from lr to 0 over the run
    warmup_steps: int = Field(0, ge=0)  # linear warm-up to lr; schedules count training steps

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, betas: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in betas):
            raise ValueError("each beta must be in [0, 1)")
        return betas


class OptimConfig(Section):
    generator: OptimizerConfig = Field(
        default_factory=OptimizerConfig
    )  # every net the recipe puts in G's group
    discriminator: OptimizerConfig = Field(default_factory=OptimizerConfig)  # every net in D's group


class TrainingConfig(Section):
    steps: int = Field(2000, ge=1)  # training iterations; each runs every phase whose interval divides it
    batch_size: int = Field(64, ge=1)  # real samples per iteration
    grad_accum: int = Field(1, ge=1)  # micro-batches a phase splits its batch into (same maths, less memory)
    ema_decay: float | None = Field(0.999, gt=0, lt=1)  # EMA of G's weights; None turns it off
    ema_start: int = Field(0, ge=0)  # the EMA copies G until this step, then averages
    seed: int = Field(0, ge=0, lt=2**32)  # seeds torch, numpy, python and the data order
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when available
    threads: int | None = Field(None, ge=1)  # CPU threads for torch; None keeps torch's choice
    # Autocast precision of the training passes. auto: for image data bf16 where the device has fast bf16
    # (CUDA with bf16, or a CPU with AMX or AVX512-BF16), else fp32; point data: fp32. fp16 is CUDA only.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool | None = None  # NHWC memory layout for nets with convolutions; None: on for those
    compile: bool = False  # torch.compile the nets (opt-in: it costs start-up time and gave no gain on CPU)
    init_from: str | None = None  # run folder or checkpoint whose nets' weights start this run; nothing else

    @model_validator(mode="after")
    def _accum_divides_batch(self) -> TrainingConfig:
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by grad_accum {self.grad_accum}")
        return self


class LoggingConfig(Section):
    log_every: int = Field(50, ge=1)  # steps between lines in metrics.jsonl and TensorBoard
    sample_every: int = Field(500, ge=1)  # steps between sample grids (fixed noise)
    checkpoint_every: int = Field(500, ge=1)  # steps between checkpoints
    keep_checkpoints: int = Field(3, ge=1)  # newest checkpoints kept on disk
    grid_size: int = Field(64, ge=1, le=1024)  # samples in each grid
    tensorboard: bool = True  # write TensorBoard event files


class EvaluationConfig(Section):
    every: int | None = Field(None, ge=1)  # steps between evaluations while training; None turns them off
    metric: str = "fid"  # the score that picks checkpoints/best.safetensors (`ganforge list metrics`)
    extractor: str | None = None  # None: lenet for the digit sets, raw for points, inception otherwise
    n: int = Field(2000, ge=2)  # generated samples (and real ones, at most) per evaluation
    keep_best: bool = True  # keep the checkpoint with the best score beside the newest ones


class StabilityConfig(Section):
    """Remedies for unstable training and mode collapse, each a switch (docs/stability.md says when to use
    which). Settings left at None take the objective's default (WGAN-GP implies gradient_penalty 10 and
    n_critic 5) and are otherwise off. Generator EMA is `training.ema_decay`; TTUR is `optim.*.lr`."""

    n_critic: int | None = Field(None, ge=1)  # D steps per G step (G runs every n_critic-th step)
    gradient_penalty: float | None = Field(None, ge=0)  # lambda of WGAN-GP's penalty (Gulrajani et al. 2017)
    weight_clip: float | None = Field(None, gt=0)  # clip D's weights to [-c, c] after each step (WGAN)
    r1: float | None = Field(None, ge=0)  # gamma of the R1 penalty on real data (Mescheder et al. 2018)
    r1_every: int = Field(16, ge=1)  # lazy R1: a separate D step every k steps, scaled by k
    spectral_norm: bool = False  # spectral normalisation of every D layer (Miyato et al. 2018)
    instance_noise: float = Field(0.0, ge=0)  # std of Gaussian noise on D's inputs, annealed linearly to 0
    instance_noise_steps: int | None = Field(None, ge=1)  # steps of the anneal; None: the whole run
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)  # one-sided: real targets 1 - s (Salimans et al. 2016)
    minibatch_std: int = Field(0, ge=0)  # group size of D's minibatch-std feature (Karras et al. 2018); 0 off
    pac: int = Field(1, ge=1)  # PacGAN: D judges pac samples at once (Lin et al. 2018); 1 off
    unrolled_steps: int = Field(0, ge=0)  # G's loss looks k simulated D steps ahead (Metz et al. 2017)
    # Learning rate of the simulated Adam steps on D (with D's betas); None: D's own `optim.discriminator.lr`.
    unrolled_lr: float | None = Field(None, gt=0)
    diffaugment: list[Literal["color", "translation", "cutout"]] = Field(
        default_factory=list
    )  # DiffAugment policies on D's image inputs (Zhao et al. 2020)
    lecam: float = Field(0.0, ge=0)  # weight of LeCam regularisation (Tseng et al. 2021)
    lecam_decay: float = Field(0.99, gt=0, lt=1)  # EMA decay of LeCam's anchors
    freeze_d: int = Field(0, ge=0)  # FreezeD (Mo et al. 2020): freeze D's first k layers with weights; 0 off


class SamplingConfig(Section):
    """How a trained generator is sampled; saved with its weights, so `load_generator` samples alike."""

    # Jacobian truncation (Issenhuth et al. 2020): drop this fraction of latents, those where G stretches
    # most (largest Jacobian norm). They land in the gaps between the data's disconnected modes. 0 keeps all.
    jacobian_reject: float = Field(0.0, ge=0, lt=0.9)
    # Autocast precision of sampling. fp32 by default, so that stored evaluations do not depend on the
    # hardware; bf16 is faster on CPUs with AMX and on GPUs; fp16 is CUDA only.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"


class MonitorsConfig(Section):
    """Watchers for trouble while training: mode collapse, D overpowering G, divergence, oscillation."""

    enabled: bool = True  # the monitors run by default; a diversity check costs about one training step
    policy: Literal["warn", "stop", "rollback"] = "warn"  # what an alert does beyond the warning
    lr_factor: float = Field(0.5, gt=0, lt=1)  # rollback: learning rates are multiplied by this
    max_rollbacks: int = Field(3, ge=1)  # rollback: after this many, the run stops instead
    every: int = Field(250, ge=1)  # steps between sample-diversity checks (mode collapse)
    samples: int = Field(512, ge=16)  # generated and real samples per diversity check
    diversity_ratio: float = Field(0.5, gt=0, lt=1)  # collapse: sample spread below this x the data's
    class_balance: float = Field(0.75, gt=0, lt=1)  # lopsided: class entropy below this x the data's
    window: int = Field(200, ge=10)  # steps a sign of trouble must last; stats are read every window/10
    overpower_margin: float = Field(0.05, gt=0, lt=0.5)  # overpowered: D(x) > 1 - m and D(G(z)) < m
    gradient_spike: float = Field(20.0, gt=1)  # divergence: a gradient norm above this x its usual level


class RunConfig(Section):
    """Everything a run needs; stored as `config.yaml` in the run folder."""

    recipe: RecipeConfig = Field(default_factory=RecipeConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    nets: NetsConfig = Field(default_factory=NetsConfig)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    stability: StabilityConfig = Field(default_factory=StabilityConfig)
    monitors: MonitorsConfig = Field(default_factory=MonitorsConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# ----------------------------------------------------------------------------------------------------------
# Resolving a config from its sources.


def preset_names() -> list[str]:
    folder = resources.files("ganforge") / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """Return the raw dict of the preset called `name`."""
    if name not in preset_names():
        raise UserError(f"--preset: unknown preset {name!r} (known: {', '.join(preset_names())})")
    text = (resources.files("ganforge") / "presets" / f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"config file {str(path)!r} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(
            f"config file {str(path)!r} must hold a mapping of sections, not {type(data).__name__}"
        )
    return data


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.key=value` override to `tree` in place; the value is parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set: expected key=value, got {assignment!r}")
    parts = key.strip().split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if isinstance(child, str):  # a bare name (`recipe: dcgan`) grows into a mapping
            child = {"name": child}
        elif not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        node[parts[-1]] = raw


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _known_keys(location: tuple[Any, ...]) -> list[str]:
    """Return the field names of the config section at `location` (a pydantic error location)."""
    model: Any = RunConfig
    for part in location:
        field = getattr(model, "model_fields", {}).get(part)
        model = field.annotation if field is not None else None
    return list(getattr(model, "model_fields", {})) or ["see `ganforge train --dry-run`"]


def validate(tree: dict[str, Any]) -> RunConfig:
    """Return the RunConfig for `tree`, turning pydantic's report into one line naming each bad field."""
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "config"
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = f"unknown key (known: {', '.join(_known_keys(err['loc'][:-1]))})"
            problems.append(f"{where}: {message}")
        raise UserError("config: " + "; ".join(problems)) from None


def resolve(
    source: str | Path | dict[str, Any] | RunConfig | None = None,
    preset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> RunConfig:
    """Return the validated config made from a preset, a YAML path or dict, and `key=value` overrides."""
    tree: dict[str, Any] = {}
    if preset:
        tree = _merge(tree, load_preset(preset))
    if isinstance(source, RunConfig):
        tree = _merge(tree, source.model_dump(mode="json"))
    elif isinstance(source, dict):
        tree = _merge(tree, source)
    elif source is not None:
        tree = _merge(tree, load_yaml(source))
    for assignment in overrides:
        apply_override(tree, assignment)
    return validate(tree)

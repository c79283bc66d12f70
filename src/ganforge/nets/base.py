"""What every net shares: a registry, constructor arguments saved as config, shape checks, DCGAN init."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from pydantic import ValidationError, validate_call
from torch import nn

from ganforge.errors import UserError
from ganforge.registry import Registry

# Names end in "_generator" (constructor takes data_shape and latent_dim; forward(z) -> samples) or in
# "_discriminator" (constructor takes data_shape; forward(x) -> logits of shape (N,)). Image-to-image nets
# (nets/unet.py) differ: the generator takes data_shape and source_channels and maps images (N, *source_shape)
# to images; the PatchGAN discriminator returns one logit per patch, (N, patches).
NETS: Registry[type[nn.Module]] = Registry("net")


def configurable(init: Callable[..., None]) -> Callable[..., None]:
    """Decorate a net's `__init__`: type-check its arguments and keep them in `self.config`.

    `self.config` is JSON-friendly and rebuilds the net with `cls(**config)`, so a saved generator needs
    nothing but its class name, this dict and its weights.
    """
    signature = inspect.signature(init)
    checked = validate_call(init, config={"arbitrary_types_allowed": True})

    @functools.wraps(init)
    def wrapper(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        checked(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.config = {k: _plain(v) for k, v in bound.arguments.items() if k != "self"}

    return wrapper


def _plain(value: Any) -> Any:
    return list(_plain(v) for v in value) if isinstance(value, (tuple, list)) else value


def translates(net: nn.Module) -> bool:
    """Return whether `net` is an image-to-image generator (pix2pix's U-Net): it takes a `source_shape`
    image instead of a `latent_dim` vector, so nothing can be sampled from noise with it."""
    return hasattr(net, "source_shape") and not hasattr(net, "latent_dim")


def build_net(name: str, options: dict[str, Any], field: str, **context: Any) -> nn.Module:
    """Return the registered net `name` built from the user's `options` and the run's `context`.

    `field` is the config key the options came from (e.g. "nets.generator"), named in error messages.
    """
    cls = NETS.get(name, f"{field}.name")
    clash = set(options) & set(context)
    if clash:
        raise UserError(f"{field}.options: {', '.join(sorted(clash))} is set by the run, not by options")
    try:
        return cls(**context, **options)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown option" if err["type"] == "unexpected_keyword_argument" else err["msg"]
            problems.append(f"{field}.options.{key}: {msg}")
        raise UserError("; ".join(problems)) from None


def assert_shape(tensor: torch.Tensor, shape: Sequence[int | None], name: str = "input") -> None:
    """Raise if `tensor`'s shape differs from `shape`; None matches any size (e.g. the batch)."""
    if tensor.ndim != len(shape) or any(
        s is not None and s != t for s, t in zip(shape, tensor.shape, strict=True)
    ):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(tensor.shape)}")


def dcgan_init(module: nn.Module) -> None:
    """Initialise weights as in DCGAN (Radford et al. 2015): N(0, 0.02); batch-norm scale N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)

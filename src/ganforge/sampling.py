"""Sampling from a trained generator. Needs nothing from the training code: a net class, its config, weights.

A run folder holds `generator.safetensors`: the generator's weights (the EMA copy when the run kept one)
with JSON metadata naming the registered net, its constructor arguments and the data it was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn

from ganforge.data import DataInfo
from ganforge.engine.checkpoint import read_tensors, tensor_digest, write_tensors
from ganforge.errors import UserError
from ganforge.nets import NETS
from ganforge.registry import name_of

GENERATOR_FILE = "generator.safetensors"


def save_generator(path: Path, net: nn.Module, data: DataInfo, step: int, weights: str) -> None:
    """Write `net` (a registered, configurable net) with what `load_generator` needs to rebuild it."""
    metadata = {
        "net": name_of(NETS, type(net)),
        "config": json.dumps(net.config),
        "data": json.dumps(
            {"name": data.name, "kind": data.kind, "shape": list(data.shape), "num_classes": data.num_classes}
        ),
        "step": str(step),
        "weights": weights,  # "ema" or "raw"
    }
    write_tensors(path, {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, metadata)


class Sampler:
    """A generator ready to sample: `sample(n, seed=...)` gives (n, *shape) tensors in data space."""

    def __init__(self, net: nn.Module, data: DataInfo, step: int = 0, weights: str = "raw") -> None:
        self.net = net
        self.data = data  # what the generator was trained on
        self.step = step  # training step of these weights
        self.weights = weights  # "ema" or "raw"

    @property
    def latent_dim(self) -> int:
        return self.net.latent_dim

    @property
    def weights_hash(self) -> str:
        """Return the SHA-256 of the weights (the checksum stored in generator.safetensors)."""
        return tensor_digest({k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()})

    def latents(self, n: int, seed: int | None = None) -> torch.Tensor:
        """Return (n, latent_dim) noise z ~ N(0, I) on the CPU; the same seed gives the same noise."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.randn(n, self.latent_dim, generator=generator)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Return the samples for latents `z` (n, latent_dim), on the CPU; images are in [-1, 1]."""
        device = next(self.net.parameters()).device
        was_training = self.net.training
        self.net.eval()
        try:
            chunks = [self.net(part.to(device)).float().cpu() for part in z.split(batch_size)]
        finally:
            self.net.train(was_training)
        return torch.cat(chunks)

    def sample(
        self, n: int, seed: int | None = None, labels: Any = None, batch_size: int = 512
    ) -> torch.Tensor:
        """Return `n` samples on the CPU; images are (n, C, H, W) in [-1, 1]. Same seed, same samples."""
        if n <= 0:
            raise UserError(f"n must be at least 1, got {n}")
        if labels is not None:
            name = type(self.net).__name__
            raise UserError(f"this generator is unconditional ({name}); it takes no labels")
        return self.decode(self.latents(n, seed), batch_size)

    def save(self, path: str | Path, n: int, seed: int | None = None) -> Path:
        """Write `n` samples to `path`: a .png (image grid or scatter plot) or an .npz (array `x`)."""
        from ganforge.report import save_samples

        return save_samples(self.sample(n, seed=seed), self.data.kind, Path(path))


def load_generator(run: str | Path, device: str = "cpu") -> Sampler:
    """Return a Sampler for the generator saved in a run folder (or a `generator.safetensors` file)."""
    path = Path(run)
    if path.is_dir():
        path = path / GENERATOR_FILE
    if not path.is_file():
        raise UserError(f"no generator at {str(path)!r} (is {str(run)!r} a ganforge run folder?)")
    try:
        metadata, state = read_tensors(path)
        net = NETS.get(metadata["net"], "generator file")(**json.loads(metadata["config"]))
        net.load_state_dict(state)
        data = json.loads(metadata["data"])
    except (SafetensorError, KeyError, ValueError, RuntimeError, OSError) as exc:
        raise UserError(
            f"generator file {str(path)!r} is corrupted or not a ganforge generator ({exc})"
        ) from None
    info = DataInfo(data["name"], data["kind"], tuple(data["shape"]), data["num_classes"])
    return Sampler(net.to(device).eval(), info, int(metadata.get("step", 0)), metadata.get("weights", "raw"))


def to_uint8_images(samples: torch.Tensor) -> np.ndarray:
    """Return images in [-1, 1] as uint8 (N, C, H, W)."""
    return ((samples.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()

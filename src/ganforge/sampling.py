"""Sampling from a trained generator. Needs nothing from the training code: a net class, its config, weights.

A run folder holds `generator.safetensors`: the generator's weights (the EMA copy when the run kept one)
with JSON metadata naming the registered net, its constructor arguments, the data it was trained on and how
to sample it (the run's `sampling` config section).

Jacobian truncation (Issenhuth et al. 2020, "Learning disconnected manifolds: a no GAN's land"): a generator
is continuous, so when the data has separate modes, some latents must land in the gaps between them, and there
G stretches space the most. Ranking latents by the norm of G's Jacobian and dropping the steepest fraction
removes most of those in-between samples without a discriminator. The threshold is the (1 - fraction)
quantile of the norm over a fixed calibration set of latents, so it does not depend on the seed or on n.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn
from torch.func import jvp

from ganforge.data import DataInfo
from ganforge.engine.checkpoint import read_tensors, tensor_digest, write_tensors
from ganforge.errors import UserError
from ganforge.nets import NETS
from ganforge.registry import name_of

GENERATOR_FILE = "generator.safetensors"
CALIBRATION_LATENTS = 4096  # latents whose Jacobian norms set the truncation threshold
CALIBRATION_SEED = 20_200_000  # their seed: fixed, so the threshold is a property of the weights alone
EXACT_JACOBIAN_DIMS = 8  # up to this latent size the Jacobian norm is exact; above, a 4-probe estimate
PROBES = 4


def jacobian_norms(net: nn.Module, z: torch.Tensor, probes: torch.Tensor | None = None) -> torch.Tensor:
    """Return the Frobenius norm of dG/dz at each latent of `z` (n, d): (n,).

    Exact (one forward-mode product per latent axis) when `probes` is None; otherwise the unbiased estimate
    ||J||^2 ~ mean over k of ||J v_k||^2 for the Gaussian directions `probes` (k, n, d). The net must treat
    samples independently (eval mode), which is how samplers run it.
    """
    directions = probes if probes is not None else torch.eye(z.shape[1], device=z.device)[:, None, :]
    squared = torch.zeros(len(z), device=z.device)
    for direction in directions:
        _, tangent = jvp(net, (z,), (direction.expand_as(z),))
        squared += tangent.float().flatten(1).square().sum(dim=1)
    if probes is not None:
        squared /= len(probes)
    return squared.sqrt()


def save_generator(path: Path, sampler: Sampler) -> None:
    """Write the sampler's net (a registered, configurable net) with what `load_generator` needs."""
    net, data = sampler.net, sampler.data
    metadata = {
        "net": name_of(NETS, type(net)),
        "config": json.dumps(net.config),
        "data": json.dumps(
            {"name": data.name, "kind": data.kind, "shape": list(data.shape), "num_classes": data.num_classes}
        ),
        "step": str(sampler.step),
        "weights": sampler.weights,  # "ema" or "raw"
        "sampling": json.dumps({"jacobian_reject": sampler.jacobian_reject}),
    }
    write_tensors(path, {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, metadata)


class Sampler:
    """A generator ready to sample: `sample(n, seed=...)` gives (n, *shape) tensors in data space.

    With `jacobian_reject` r > 0, `sample` draws only latents whose Jacobian norm is below the threshold
    that a fraction r of calibration latents exceed (Jacobian truncation); `decode` never truncates.
    """

    def __init__(
        self,
        net: nn.Module,
        data: DataInfo,
        step: int = 0,
        weights: str = "raw",
        jacobian_reject: float = 0.0,
    ) -> None:
        if not 0 <= jacobian_reject < 0.9:
            raise UserError(f"jacobian_reject must be in [0, 0.9), got {jacobian_reject}")
        self.net = net
        self.data = data  # what the generator was trained on
        self.step = step  # training step of these weights
        self.weights = weights  # "ema" or "raw"
        self.jacobian_reject = jacobian_reject
        self._threshold: tuple[str, float] | None = None  # (weights hash, norm) of the last calibration

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

    @contextmanager
    def _evaluating(self) -> Iterator[torch.device]:
        """Put the net in eval mode (batch norm from its running statistics) and yield its device."""
        was_training = self.net.training
        self.net.eval()
        try:
            yield next(self.net.parameters()).device
        finally:
            self.net.train(was_training)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Return the samples for latents `z` (n, latent_dim), on the CPU; images are in [-1, 1]."""
        with self._evaluating() as device:
            chunks = [self.net(part.to(device)).float().cpu() for part in z.split(batch_size)]
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
        if self.jacobian_reject:
            return self.decode(self.truncated_latents(n, seed, batch_size), batch_size)
        return self.decode(self.latents(n, seed), batch_size)

    # -- Jacobian truncation --------------------------------------------------------------------------

    @torch.no_grad()
    def latent_norms(
        self, z: torch.Tensor, batch_size: int = 512, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return the Jacobian norm of G at each latent of `z` (n, latent_dim), on the CPU: (n,).

        Exact for latents of up to 8 dimensions; above, estimated from 4 Gaussian probe directions drawn
        from `generator` (the sampler's seeded stream, so the same seed keeps the same samples).
        """
        norms = []
        with self._evaluating() as device:
            for part in z.split(batch_size):
                probes = None
                if self.latent_dim > EXACT_JACOBIAN_DIMS:
                    probes = torch.randn(PROBES, *part.shape, generator=generator).to(device)
                norms.append(jacobian_norms(self.net, part.to(device), probes).cpu())
        return torch.cat(norms)

    def truncation_threshold(self, batch_size: int = 512) -> float:
        """Return the Jacobian norm above which latents are rejected (computed once per set of weights)."""
        digest = self.weights_hash
        if self._threshold is None or self._threshold[0] != digest:
            generator = torch.Generator().manual_seed(CALIBRATION_SEED)
            z = torch.randn(CALIBRATION_LATENTS, self.latent_dim, generator=generator)
            norms = self.latent_norms(z, batch_size, generator).double()
            self._threshold = (digest, float(torch.quantile(norms, 1 - self.jacobian_reject)))
        return self._threshold[1]

    def truncated_latents(self, n: int, seed: int | None = None, batch_size: int = 512) -> torch.Tensor:
        """Return `n` latents below the truncation threshold, drawn in order from the seeded stream."""
        threshold = self.truncation_threshold(batch_size)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        kept: list[torch.Tensor] = []
        found = 0
        while found < n:
            # Enough for the expected acceptance rate plus a margin; the loop tops up a short draw.
            draw = math.ceil((n - found) / (1 - self.jacobian_reject) * 1.05) + 16
            z = torch.randn(draw, self.latent_dim, generator=generator)
            z = z[self.latent_norms(z, batch_size, generator) <= threshold]
            kept.append(z)
            found += len(z)
        return torch.cat(kept)[:n]

    def save(self, path: str | Path, n: int, seed: int | None = None) -> Path:
        """Write `n` samples to `path`: a .png (image grid or scatter plot) or an .npz (array `x`)."""
        from ganforge.report import save_samples

        return save_samples(self.sample(n, seed=seed), self.data.kind, Path(path))


def load_generator(run: str | Path, device: str = "cpu", jacobian_reject: float | None = None) -> Sampler:
    """Return a Sampler for the generator saved in a run folder (or a `generator.safetensors` file).

    `jacobian_reject` overrides the run's `sampling.jacobian_reject` (None keeps it; 0 turns it off).
    """
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
        sampling = json.loads(metadata.get("sampling", "{}"))  # files from before the section: defaults
    except (SafetensorError, KeyError, ValueError, RuntimeError, OSError) as exc:
        raise UserError(
            f"generator file {str(path)!r} is corrupted or not a ganforge generator ({exc})"
        ) from None
    info = DataInfo(data["name"], data["kind"], tuple(data["shape"]), data["num_classes"])
    reject = float(sampling.get("jacobian_reject", 0.0)) if jacobian_reject is None else jacobian_reject
    return Sampler(
        net.to(device).eval(), info, int(metadata.get("step", 0)), metadata.get("weights", "raw"), reject
    )


def to_uint8_images(samples: torch.Tensor) -> np.ndarray:
    """Return images in [-1, 1] as uint8 (N, C, H, W)."""
    return ((samples.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()

"""Sampling from a trained generator. Needs nothing from the training code: a net class, its config, weights.

A run folder holds `generator.safetensors`: the generator's weights (the EMA copy when the run kept one)
with JSON metadata naming the registered net, its constructor arguments, the data it was trained on and how
to sample it (the run's `sampling` config section).

Jacobian truncation (Issenhuth et al. 2020, "Learning disconnected manifolds: a no GAN's land"): a generator
is continuous, so when the data has separate modes, some latents must land in the gaps between them, and there
G stretches space the most. Ranking latents by the norm of G's Jacobian and dropping the steepest fraction
removes most of those in-between samples without a discriminator. The threshold is the (1 - fraction)
quantile of the norm over a fixed calibration set of latents, so it does not depend on the seed or on n.

Noise comes from one seeded stream drawn LATENT_CHUNK rows at a time, whatever n and the batch size, so
`iter_samples` can hand out a million samples batch by batch and still give exactly what `sample` gives for
the same seed. Truncation walks the same stream in order and skips the latents it rejects.

Conditional generators (a net with `num_classes`) take labels: `sample(n, seed, labels=3)` gives n samples of
class 3, `labels=[...]` one class per sample, and `labels=None` classes drawn uniformly from a stream of their
own (seed + LABEL_SEED_OFFSET), so that the latents of a seed are the same whichever labels are asked for (a
class grid shows the same noise in every row) and streaming stays exact. Truncation is then per class: the
Jacobian is taken with respect to z with the label fixed, samples of class c take, in order, the latents of
the seed's stream that pass the test with label c, and the threshold is calibrated with the calibration
latents' classes cycled 0, 1, ..., K-1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
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

log = logging.getLogger("ganforge")

GENERATOR_FILE = "generator.safetensors"
CALIBRATION_LATENTS = 4096  # latents whose Jacobian norms set the truncation threshold
CALIBRATION_SEED = 20_200_000  # their seed: fixed, so the threshold is a property of the weights alone
EXACT_JACOBIAN_DIMS = 8  # up to this latent size the Jacobian norm is exact; above, a 4-probe estimate
PROBES = 4
LATENT_CHUNK = 4096  # rows of noise drawn at a time from the seeded stream; fixed, so streaming is exact
TRUNCATION_BLOCK = 512  # latents tested for truncation at a time; fixed, so the kept ones do not depend on n
PROBE_SEED_OFFSET = 2**32  # probe directions of seed s come from seed s + this: apart from any latent stream
LABEL_SEED_OFFSET = 2**33  # labels drawn for seed s (labels=None) come from seed s + this
MAX_GRID_SAMPLES = 4096  # most samples a .png holds; more go to an .npz
MAX_GRID_COLUMNS = 10  # a class grid's samples per class
MAX_GRID_CLASSES = 20  # a class grid's rows: the first classes only, beyond this many
PRECISIONS = ("fp32", "bf16", "fp16")  # the values of sampling.precision
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
FP16_ON_CPU = "precision: fp16 needs a CUDA device; use bf16 or fp32 on the CPU"


def jacobian_norms(
    net: nn.Module, z: torch.Tensor, probes: torch.Tensor | None = None, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """Return the Frobenius norm of dG/dz at each latent of `z` (n, d): (n,).

    Exact (one forward-mode product per latent axis) when `probes` is None; otherwise the unbiased estimate
    ||J||^2 ~ mean over k of ||J v_k||^2 for the Gaussian directions `probes` (k, n, d). The net must treat
    samples independently (eval mode), which is how samplers run it. A conditional net gets `labels` (n,),
    held fixed: the derivative is with respect to z only.
    """
    directions = probes if probes is not None else torch.eye(z.shape[1], device=z.device)[:, None, :]
    squared = torch.zeros(len(z), device=z.device)
    decode = net if labels is None else (lambda latents: net(latents, labels))
    for direction in directions:
        _, tangent = jvp(decode, (z,), (direction.expand_as(z),))
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
        "sampling": json.dumps({"jacobian_reject": sampler.jacobian_reject, "precision": sampler.precision}),
    }
    write_tensors(path, {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, metadata)


class Sampler:
    """A generator ready to sample: `sample(n, seed=...)` gives (n, *shape) tensors in data space.

    With `jacobian_reject` r > 0, `sample` draws only latents whose Jacobian norm is below the threshold
    that a fraction r of calibration latents exceed (Jacobian truncation); `decode` never truncates.
    With `precision` "bf16" or "fp16" (CUDA only), the net runs under autocast in that type; samples
    still come back as float32.
    """

    def __init__(
        self,
        net: nn.Module,
        data: DataInfo,
        step: int = 0,
        weights: str = "raw",
        jacobian_reject: float = 0.0,
        precision: str = "fp32",
    ) -> None:
        if not 0 <= jacobian_reject < 0.9:
            raise UserError(f"jacobian_reject must be in [0, 0.9), got {jacobian_reject}")
        if precision not in PRECISIONS:
            raise UserError(f"precision must be fp32, bf16 or fp16, got {precision!r}")
        self.net = net
        self.data = data  # what the generator was trained on
        self.step = step  # training step of these weights
        self.weights = weights  # "ema" or "raw"
        self.jacobian_reject = jacobian_reject
        self.precision = precision  # autocast type of `decode`: "fp32", "bf16" or "fp16"
        self._autocast(next(net.parameters()).device)  # fp16 on the CPU fails here, not at the first sample
        self._threshold: tuple[str, float] | None = None  # (weights hash, norm) of the last calibration

    @property
    def latent_dim(self) -> int:
        return self.net.latent_dim

    @property
    def takes_text(self) -> bool:
        """Return whether the generator is text-conditional (nets/text.py): `sample(..., text=...)`."""
        return hasattr(self.net, "text_dim")

    def text_embeddings(self, n: int, text: str | Sequence[str]) -> torch.Tensor:
        """Return (n, text_dim) embeddings of `text` (one sentence for all n, or n sentences), made by the
        encoder the generator was trained with."""
        from ganforge.text import encode_texts

        return encode_texts(self.net.encoder, self._sentences(n, text))

    def _sentences(self, n: int, text: str | Sequence[str]) -> list[str]:
        """Return `text` as n sentences, checked (without encoding them) against this generator."""
        if not self.takes_text:
            raise UserError(f"text: this generator has no text conditioning ({type(self.net).__name__})")
        texts = [text] * n if isinstance(text, str) else list(text)
        if len(texts) != n or not all(isinstance(t, str) and t.strip() for t in texts):
            raise UserError(f"text: expected one sentence or {n} non-empty sentences")
        return texts

    @property
    def num_classes(self) -> int | None:
        """Return the number of classes of a conditional generator; None for an unconditional one."""
        return getattr(self.net, "num_classes", None)

    def labels(self, n: int, labels: Any = None, seed: int | None = None) -> torch.Tensor | None:
        """Return the (n,) int64 labels that `sample(n, seed, labels)` decodes with; None if unconditional.

        `labels` is an int (all n of that class), n ints (a sequence, array or tensor), or None: classes
        drawn uniformly from the label stream of `seed`, LATENT_CHUNK at a time.
        """
        classes = self.num_classes
        if classes is None:
            if labels is not None:
                name = type(self.net).__name__
                raise UserError(f"this generator is unconditional ({name}); it takes no labels")
            return None
        if labels is None:
            generator = torch.Generator().manual_seed(seed + LABEL_SEED_OFFSET) if seed is not None else None
            sizes = [min(LATENT_CHUNK, n - start) for start in range(0, n, LATENT_CHUNK)]
            return torch.cat([torch.randint(classes, (rows,), generator=generator) for rows in sizes])
        try:
            chosen = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError):
            raise UserError(f"labels: expected a class or {n} classes, got {labels!r}") from None
        if chosen.is_floating_point() or chosen.is_complex() or chosen.dtype == torch.bool:
            raise UserError(f"labels: expected integer classes, got {chosen.dtype}")
        if chosen.ndim == 0:
            chosen = chosen.expand(n)
        if chosen.shape != (n,):
            raise UserError(f"labels: expected a class or {n} classes, got shape {tuple(chosen.shape)}")
        outside = chosen[(chosen < 0) | (chosen >= classes)]
        if len(outside):
            raise UserError(
                f"labels: class {int(outside[0])} is outside the trained classes 0..{classes - 1}"
            )
        return chosen.to(torch.int64).clone()

    @property
    def weights_hash(self) -> str:
        """Return the SHA-256 of the weights (the checksum stored in generator.safetensors)."""
        return tensor_digest({k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()})

    def latents(self, n: int, seed: int | None = None) -> torch.Tensor:
        """Return (n, latent_dim) noise z ~ N(0, I) on the CPU; the same seed gives the same noise.

        Drawn LATENT_CHUNK rows at a time from one seeded generator: up to that many, one `torch.randn`.
        """
        return torch.cat([torch.empty(0, self.latent_dim), *self._noise(seed, n)])

    def _noise(self, seed: int | None, n: int | None = None) -> Iterator[torch.Tensor]:
        """Yield the seeded noise stream in chunks of LATENT_CHUNK rows: n rows in all, or without end.

        The last chunk of n rows is shorter. Without a seed, the noise comes from torch's global RNG.
        """
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        remaining = n
        while remaining is None or remaining > 0:
            rows = LATENT_CHUNK if remaining is None else min(LATENT_CHUNK, remaining)
            yield torch.randn(rows, self.latent_dim, generator=generator)  # (rows, latent_dim)
            if remaining is not None:
                remaining -= rows

    def _autocast(self, device: torch.device) -> AbstractContextManager[object]:
        """Return the autocast context of `precision` on `device` (none for fp32)."""
        if self.precision == "fp32":
            return nullcontext()
        if self.precision == "fp16" and device.type == "cpu":
            raise UserError(FP16_ON_CPU)
        return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[self.precision])

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
    def decode(
        self,
        z: torch.Tensor,
        batch_size: int = 512,
        labels: Any = None,
        text: str | Sequence[str] | None = None,
    ) -> torch.Tensor:
        """Return the float32 samples for latents `z` (n, latent_dim), on the CPU; images are in [-1, 1].

        A conditional generator decodes with `labels` (as in `sample`); None cycles the classes over the
        rows, 0, 1, ..., K-1, 0, ... (no randomness: a decoded path stays a path). A text-conditional one
        decodes with `text` instead when given: one sentence for every row, or one per row.
        """
        if text is not None:
            if labels is not None:
                raise UserError("labels and text: give one or the other, not both")
            embeddings = self.text_embeddings(len(z), text)
            with self._evaluating() as device, self._autocast(device):
                return torch.cat(
                    [
                        self.net(part.to(device), text=words.to(device)).float().cpu()
                        for part, words in zip(z.split(batch_size), embeddings.split(batch_size), strict=True)
                    ]
                )
        y = None
        if self.num_classes is not None:
            y = torch.arange(len(z)) % self.num_classes if labels is None else self.labels(len(z), labels)
        elif labels is not None:
            self.labels(len(z), labels)  # raises: an unconditional generator takes no labels
        with self._evaluating() as device, self._autocast(device):
            if y is None:
                chunks = [self.net(part.to(device)).float().cpu() for part in z.split(batch_size)]
            else:
                chunks = [
                    self.net(part.to(device), classes.to(device)).float().cpu()
                    for part, classes in zip(z.split(batch_size), y.split(batch_size), strict=True)
                ]
        return torch.cat(chunks)

    def sample(
        self,
        n: int,
        seed: int | None = None,
        labels: Any = None,
        batch_size: int = 512,
        text: str | Sequence[str] | None = None,
    ) -> torch.Tensor:
        """Return `n` samples on the CPU; images are (n, C, H, W) in [-1, 1]. Same seed, same samples.

        `labels` (conditional generators only): an int, n ints, or None for uniformly drawn classes.
        `text` (text-conditional generators only): one sentence, or n; the latents are the seed's as ever.
        """
        return torch.cat(list(self.iter_samples(n, seed, batch_size, labels, text)))

    def iter_samples(
        self,
        n: int,
        seed: int | None = None,
        batch_size: int = 512,
        labels: Any = None,
        text: str | Sequence[str] | None = None,
    ) -> Iterator[torch.Tensor]:
        """Return `sample(n, seed, labels, text)` as an iterator over consecutive batches of `batch_size`.

        The concatenated batches equal `sample(n, seed, labels, batch_size=batch_size)`, truncated or not,
        but only one batch (and one chunk of noise) is held at a time. The last batch may be shorter.
        """
        if n <= 0:
            raise UserError(f"n must be at least 1, got {n}")
        if batch_size <= 0:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        if text is not None:
            if labels is not None:
                raise UserError("labels and text: give one or the other, not both")
            if self.jacobian_reject:
                raise UserError(
                    "text: Jacobian truncation is per class, not per sentence; sample with it off"
                )
            texts = self._sentences(n, text)  # checked here; each batch's are encoded as it is drawn
            starts = range(0, n, batch_size)
            batches = _rebatch(self._noise(seed, n), n, batch_size)
            return (
                self.decode(z, batch_size, text=texts[start : start + len(z)])
                for start, z in zip(starts, batches, strict=True)
            )
        y = self.labels(n, labels, seed)
        if y is None:
            if self.jacobian_reject:
                latents = self._accepted_latents(seed, batch_size)
            else:
                latents = self._noise(seed, n)
            return (self.decode(z, batch_size) for z in _rebatch(latents, n, batch_size))
        return self._iter_conditional(n, seed, batch_size, y)

    def _iter_conditional(
        self, n: int, seed: int | None, batch_size: int, y: torch.Tensor
    ) -> Iterator[torch.Tensor]:
        classes = y.split(batch_size)
        if not self.jacobian_reject:
            for z, part in zip(_rebatch(self._noise(seed, n), n, batch_size), classes, strict=True):
                yield self.decode(z, batch_size, part)
            return
        # One stream of accepted latents per class; the samples of class c take its latents in order.
        streams: dict[int, Iterator[torch.Tensor]] = {}
        held: dict[int, torch.Tensor] = {}
        for part in classes:
            z = torch.empty(len(part), self.latent_dim)
            for label in part.unique().tolist():
                rows = (part == label).nonzero().flatten()
                if label not in streams:
                    streams[label] = self._accepted_latents(seed, batch_size, label)
                    held[label] = torch.empty(0, self.latent_dim)
                while len(held[label]) < len(rows):
                    held[label] = torch.cat([held[label], next(streams[label])])
                z[rows], held[label] = held[label][: len(rows)], held[label][len(rows) :]
            yield self.decode(z, batch_size, part)

    def class_grid(self, count: int, seed: int) -> tuple[torch.Tensor, int]:
        """Return (samples, columns) of a class grid: one row per class, the same latents in every row.

        `count` is rounded to a multiple of the classes, with 1 to MAX_GRID_COLUMNS columns; at most the
        first MAX_GRID_CLASSES classes get a row. Latents from `latents(columns, seed)`, untruncated.
        """
        classes = self.num_classes
        if classes is None:
            raise UserError(f"a class grid needs a conditional generator, not {type(self.net).__name__}")
        rows = min(classes, MAX_GRID_CLASSES)
        columns = max(1, min(MAX_GRID_COLUMNS, round(count / rows)))
        z = self.latents(columns, seed).repeat(rows, 1)  # (rows * columns, latent_dim): row r is class r
        labels = torch.arange(rows).repeat_interleave(columns)
        return self.decode(z, labels=labels), columns

    # -- Jacobian truncation --------------------------------------------------------------------------

    @torch.no_grad()
    def latent_norms(
        self,
        z: torch.Tensor,
        batch_size: int = 512,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the Jacobian norm of G at each latent of `z` (n, latent_dim), on the CPU: (n,).

        Exact for latents of up to 8 dimensions; above, estimated from 4 Gaussian probe directions per
        latent, drawn for all of `z` at once from `generator` (so `batch_size` does not change them).
        Always computed in fp32, whatever `precision`: the threshold is a quantile of these norms and must
        be a property of the weights alone, not of the precision or the hardware that samples; and in bf16
        (8 bits of mantissa) a latent near the threshold could be kept or dropped by rounding alone.
        A conditional generator needs the (n,) `labels` the latents decode with.
        """
        probes = None
        if self.latent_dim > EXACT_JACOBIAN_DIMS:
            probes = torch.randn(PROBES, *z.shape, generator=generator)  # (PROBES, n, latent_dim)
        norms = []
        with self._evaluating() as device, torch.autocast(device.type, enabled=False):
            for start in range(0, len(z), batch_size):
                part = z[start : start + batch_size].to(device)
                part_probes = None if probes is None else probes[:, start : start + batch_size].to(device)
                part_labels = None if labels is None else labels[start : start + batch_size].to(device)
                norms.append(jacobian_norms(self.net, part, part_probes, part_labels).cpu())
        return torch.cat(norms)

    def truncation_threshold(self, batch_size: int = 512) -> float:
        """Return the Jacobian norm above which latents are rejected (computed once per set of weights)."""
        digest = self.weights_hash
        if self._threshold is None or self._threshold[0] != digest:
            generator = torch.Generator().manual_seed(CALIBRATION_SEED)
            z = torch.randn(CALIBRATION_LATENTS, self.latent_dim, generator=generator)
            classes = self.num_classes
            labels = None if classes is None else torch.arange(CALIBRATION_LATENTS) % classes
            norms = self.latent_norms(z, batch_size, generator, labels).double()
            self._threshold = (digest, float(torch.quantile(norms, 1 - self.jacobian_reject)))
        return self._threshold[1]

    def truncated_latents(self, n: int, seed: int | None = None, batch_size: int = 512) -> torch.Tensor:
        """Return `n` latents below the truncation threshold, drawn in order from the seeded stream."""
        return torch.cat(list(_rebatch(self._accepted_latents(seed, batch_size), n, batch_size)))

    def _accepted_latents(
        self, seed: int | None, batch_size: int = 512, label: int | None = None
    ) -> Iterator[torch.Tensor]:
        """Yield, without end, the latents of the noise stream of `seed` that truncation keeps, in order.

        The candidates are `latents(m, seed)` for any m that is a whole number of chunks, tested
        TRUNCATION_BLOCK at a time; so the kept latents are a subsequence of the untruncated ones and do not
        depend on n or on the batch size. Probe directions (latents above 8 dimensions) come from a
        generator of their own, so that they leave the noise stream alone. A conditional generator is tested
        with every latent decoding as class `label`.
        """
        threshold = self.truncation_threshold(batch_size)
        probe_seed = None if seed is None else seed + PROBE_SEED_OFFSET
        probes = torch.Generator().manual_seed(probe_seed) if probe_seed is not None else None
        for chunk in self._noise(seed):
            for block in chunk.split(TRUNCATION_BLOCK):
                labels = None if label is None else torch.full((len(block),), label)
                yield block[self.latent_norms(block, batch_size, probes, labels) <= threshold]

    def save(
        self,
        path: str | Path,
        n: int,
        seed: int | None = None,
        batch_size: int = 512,
        labels: Any = None,
        text: str | Sequence[str] | None = None,
    ) -> Path:
        """Write `n` samples to `path` (a .png grid or scatter plot, or an .npz array `x`) and return it.

        An .npz is written batch by batch as it is sampled, so n may be in the millions; a .png holds at
        most MAX_GRID_SAMPLES.
        """
        from ganforge.report import samples_array, save_samples, write_npz

        path = Path(path)
        kind = self.data.kind
        if path.suffix.lower() == ".npz":
            batches = (samples_array(b, kind) for b in self.iter_samples(n, seed, batch_size, labels, text))
            dtype = np.uint8 if kind == "images" else np.float32
            return write_npz(path, batches, (n, *self.data.shape), dtype)
        if path.suffix.lower() == ".png" and n > MAX_GRID_SAMPLES:
            raise UserError(
                f"n: a .png holds at most {MAX_GRID_SAMPLES} samples, got {n}; write an .npz for more"
            )
        samples = self.sample(n, seed=seed, labels=labels, batch_size=batch_size, text=text)
        return save_samples(samples, kind, path)


def load_generator(
    run: str | Path, device: str = "cpu", jacobian_reject: float | None = None, precision: str | None = None
) -> Sampler:
    """Return a Sampler for the generator saved in a run folder (or a `generator.safetensors` file).

    `jacobian_reject` overrides the run's `sampling.jacobian_reject` (None keeps it; 0 turns it off), and
    `precision` its `sampling.precision` (None keeps it; files from before the setting sample in fp32).
    A run saved with fp16, which needs CUDA, samples in fp32 when loaded onto the CPU without `precision`,
    so that it stays usable there; asking for fp16 on the CPU is an error.
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
    if precision is None:
        precision = sampling.get("precision", "fp32")
        if precision == "fp16" and torch.device(device).type == "cpu":
            log.warning("%s was saved to sample in fp16, which needs CUDA; sampling in fp32 on the CPU", path)
            precision = "fp32"
    net = net.to(device).eval()
    step, weights = int(metadata.get("step", 0)), metadata.get("weights", "raw")
    return Sampler(net, info, step, weights, reject, precision=precision)


def to_uint8_images(samples: torch.Tensor) -> np.ndarray:
    """Return images in [-1, 1] as uint8 (N, C, H, W)."""
    return ((samples.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def _rebatch(blocks: Iterator[torch.Tensor], n: int, batch_size: int) -> Iterator[torch.Tensor]:
    """Yield the first `n` rows of `blocks` again, in batches of `batch_size` rows (the last may be shorter).

    `blocks` may hold tensors of any lengths, and may be endless: it is not drawn from past the n-th row.
    """
    held = torch.empty(0)
    remaining = n
    for block in blocks:
        held = torch.cat([held, block]) if len(held) else block
        while remaining and len(held) >= min(batch_size, remaining):
            take = min(batch_size, remaining)
            yield held[:take]
            held, remaining = held[take:], remaining - take
        if not remaining:
            return

"""Datasets as in-memory tensors, their registry, and a batch loader whose order is resumable."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ganforge.config import DataConfig
from ganforge.data.augment import POLICIES, augment_batch
from ganforge.errors import UserError
from ganforge.registry import Registry


@dataclass(frozen=True)
class DataInfo:
    """What nets and samplers need to know about a dataset."""

    name: str  # as given in the config
    kind: Literal["images", "points"]  # images are (C, H, W) in [-1, 1]; points are vectors
    shape: tuple[int, ...]  # shape of one sample
    num_classes: int | None  # None when the data has no labels
    # Captioned data (data/captions.py): for each class, the phrasings of its caption; None otherwise.
    captions: tuple[tuple[str, ...], ...] | None = None
    # Paired data (data/paired.py): each sample is [source | target] stacked on the channel axis, so that
    # shuffling and augmenting treat a pair as one image; these are (source channels, target channels).
    pair_channels: tuple[int, int] | None = None
    # Unpaired data (data/paired.py, unpaired:DIR): stored like pairs, but the two halves of a sample were
    # matched at random; pix2pix refuses it, CycleGAN re-pairs every batch anyway.
    unpaired: bool = False


@dataclass(frozen=True)
class TensorData:
    x: torch.Tensor  # (N, *info.shape) float32
    y: torch.Tensor | None  # (N,) int64 labels, or None
    info: DataInfo


@dataclass(frozen=True)
class Batch:
    x: torch.Tensor  # (B, *shape) real samples
    y: torch.Tensor | None = None  # (B,) labels

    def __len__(self) -> int:
        return self.x.shape[0]

    def split(self, parts: int) -> list[Batch]:
        """Return `parts` equal micro-batches (gradient accumulation)."""
        xs = self.x.chunk(parts)
        ys = self.y.chunk(parts) if self.y is not None else [None] * len(xs)
        return [Batch(x, y) for x, y in zip(xs, ys, strict=True)]


# A loader takes the text after "name:" (a path for folder/npz, "" for built-ins) and the data config.
DATASETS: Registry[Callable[[str, DataConfig], TensorData]] = Registry("dataset")


def load_dataset(config: DataConfig) -> TensorData:
    """Return the dataset named by `config.name` ("ring8", "folder:PATH", ...) as tensors."""
    key, sep, argument = config.name.partition(":")
    registered = key + ":PATH" if sep else key
    if registered not in DATASETS:  # name what the user wrote, not the registry's "KEY:PATH" pattern
        raise UserError(f"data.name: unknown dataset {config.name!r} (known: {', '.join(DATASETS.names())})")
    data = DATASETS.get(registered)(argument, config)
    size = config.image_size
    if data.info.kind == "images" and size and tuple(data.x.shape[-2:]) != (size, size):
        x = resize_images(data.x, size)
        data = TensorData(x, data.y, dataclasses.replace(data.info, shape=tuple(x.shape[1:])))
    return data


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Return (N, C, size, size) images: the shorter side scaled to `size`, then the centre square.

    The same geometry as image folders get; bilinear with antialias, values kept in [-1, 1].
    """
    height, width = x.shape[-2:]
    scale = size / min(height, width)
    height, width = max(size, round(height * scale)), max(size, round(width * scale))
    x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    top, left = (height - size) // 2, (width - size) // 2
    return x[..., top : top + size, left : left + size].clamp(-1, 1).contiguous()


def labelled(
    x: torch.Tensor,
    y: torch.Tensor | None,
    name: str,
    kind: Literal["images", "points"],
    num_classes: int | None = None,  # None: read from the labels (largest label + 1)
) -> TensorData:
    """Return TensorData for `x` and `y`, with the number of classes given or read from the labels."""
    if num_classes is None and y is not None and len(y):
        num_classes = int(y.max()) + 1
    return TensorData(x.float().contiguous(), y, DataInfo(name, kind, tuple(x.shape[1:]), num_classes))


class BatchLoader:
    """Yields shuffled batches from in-memory tensors; its whole state is (epoch, position).

    The order of epoch e is a permutation drawn from a generator seeded with (seed, e), so it depends on
    nothing else: a resumed run sees exactly the batches the uninterrupted run would have seen.
    The last incomplete batch of each epoch is dropped.

    In a distributed run every process holds the same loader (same seed, so the same order) and takes its
    own slice of each global batch: process `rank` of `world` gets rows rank*B/world to (rank+1)*B/world.
    Together the processes see exactly the batches a single process would.

    With `augment`, each global batch is augmented (data/augment.py) by a generator seeded with (seed,
    epoch, position), so a resumed or distributed run sees the same augmented images as well.
    """

    def __init__(
        self,
        data: TensorData,
        batch_size: int,  # the global batch, over all processes
        seed: int,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
        augment: Sequence[str] = (),  # data.augment: policies of data/augment.py, for images only
    ) -> None:
        if batch_size > len(data.x):
            raise UserError(
                f"training.batch_size: {batch_size} is larger than the dataset ({len(data.x)} samples)"
            )
        if batch_size % world:
            raise UserError(
                f"training.batch_size: {batch_size} is not divisible by the {world} processes of this run"
            )
        unknown = [name for name in augment if name not in POLICIES]
        if unknown:
            raise UserError(
                f"data.augment: unknown policy {', '.join(map(repr, unknown))} (known: {', '.join(POLICIES)})"
            )
        if augment and data.x.ndim != 4:
            raise UserError(
                f"data.augment: {', '.join(augment)} works only for images (N, C, H, W), "
                f"and {data.info.name!r} holds {data.info.kind} of shape {tuple(data.x.shape[1:])}"
            )
        self.augment = tuple(augment)
        self.shard = slice(rank * batch_size // world, (rank + 1) * batch_size // world)
        self.x = data.x.to(device)
        self.y = data.y.to(device) if data.y is not None else None
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order: torch.Tensor | None = None

    def _epoch_order(self) -> torch.Tensor:
        # Modulo 2**64 keeps any int seed in torch's range; for seeds that fit it changes nothing.
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**64)
        return torch.randperm(len(self.x), generator=generator).to(self.x.device)

    def next(self) -> Batch:
        if self.position + self.batch_size > len(self.x):
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        if self._order is None:
            self._order = self._epoch_order()
        index = self._order[self.position : self.position + self.batch_size][self.shard]
        x = self.x[index]
        if self.augment:
            generator = self._augment_generator()
            x = augment_batch(x, self.augment, generator, batch_size=self.batch_size, offset=self.shard.start)
        self.position += self.batch_size
        return Batch(x, self.y[index] if self.y is not None else None)

    def _augment_generator(self) -> torch.Generator:
        """Return a generator on the data's device seeded with (seed, epoch, position of this batch)."""
        key = f"ganforge-augment:{self.seed}:{self.epoch}:{self.position}".encode()
        seed = int.from_bytes(hashlib.sha256(key).digest()[:8], "little")
        return torch.Generator(device=self.x.device).manual_seed(seed)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self._order = int(state["epoch"]), int(state["position"]), None

    def to_memory_format(self, memory_format: torch.memory_format) -> None:
        """Store image data in `memory_format` (channels_last for convolutional nets); batches keep it."""
        if self.x.ndim == 4:
            self.x = self.x.contiguous(memory_format=memory_format)


def split_holdout(data: TensorData, fraction: float, seed: int) -> tuple[TensorData, TensorData | None]:
    """Return (train, held-out): `fraction` of the samples, chosen by a permutation seeded with `seed`.

    The same (data, fraction, seed) always gives the same split, so training and evaluation agree on it.
    """
    if fraction <= 0:
        return data, None
    count = int(round(fraction * len(data.x)))
    order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(seed))
    held, kept = order[:count].sort().values, order[count:].sort().values

    def take(index: torch.Tensor) -> TensorData:
        return TensorData(data.x[index], data.y[index] if data.y is not None else None, data.info)

    return take(kept), take(held)

"""Datasets as in-memory tensors, their registry, and a batch loader whose order is resumable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ganforge.config import DataConfig
from ganforge.errors import UserError
from ganforge.registry import Registry


@dataclass(frozen=True)
class DataInfo:
    """What nets and samplers need to know about a dataset."""

    name: str  # as given in the config
    kind: Literal["images", "points"]  # images are (C, H, W) in [-1, 1]; points are vectors
    shape: tuple[int, ...]  # shape of one sample
    num_classes: int | None  # None when the data has no labels


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
        ys = self.y.chunk(parts) if self.y is not None else [None] * parts
        return [Batch(x, y) for x, y in zip(xs, ys)]


# A loader takes the text after "name:" (a path for folder/npz, "" for built-ins) and the data config.
DATASETS: Registry[Callable[[str, DataConfig], TensorData]] = Registry("dataset")


def load_dataset(config: DataConfig) -> TensorData:
    """Return the dataset named by `config.name` ("ring8", "folder:PATH", ...) as tensors."""
    key, sep, argument = config.name.partition(":")
    loader = DATASETS.get(key + ":PATH" if sep else key, "data.name")
    data = loader(argument, config)
    if data.info.kind == "images" and config.image_size and data.x.shape[-1] != config.image_size:
        data = TensorData(resize_images(data.x, config.image_size), data.y, data.info)
        c = data.info.shape[0]
        data = TensorData(data.x, data.y, DataInfo(data.info.name, "images", (c, *data.x.shape[-2:]), data.info.num_classes))
    return data


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Return square images of side `size`: bilinear with antialias, values kept in [-1, 1]."""
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(-1, 1)


def labelled(x: torch.Tensor, y: torch.Tensor | None, name: str, kind: Literal["images", "points"]) -> TensorData:
    """Return TensorData for `x` and `y`, with the number of classes read from the labels."""
    num_classes = int(y.max()) + 1 if y is not None and len(y) else None
    return TensorData(x.float().contiguous(), y, DataInfo(name, kind, tuple(x.shape[1:]), num_classes))


class BatchLoader:
    """Yields shuffled batches from in-memory tensors; its whole state is (epoch, position).

    The order of epoch e is a permutation drawn from a generator seeded with (seed, e), so it depends on
    nothing else: a resumed run sees exactly the batches the uninterrupted run would have seen.
    The last incomplete batch of each epoch is dropped.
    """

    def __init__(self, data: TensorData, batch_size: int, seed: int, device: torch.device) -> None:
        if batch_size > len(data.x):
            raise UserError(
                f"training.batch_size: {batch_size} is larger than the dataset ({len(data.x)} samples)"
            )
        self.x = data.x.to(device)
        self.y = data.y.to(device) if data.y is not None else None
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order: torch.Tensor | None = None

    def _epoch_order(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self.x), generator=generator).to(self.x.device)

    def next(self) -> Batch:
        if self.position + self.batch_size > len(self.x):
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        if self._order is None:
            self._order = self._epoch_order()
        index = self._order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return Batch(self.x[index], self.y[index] if self.y is not None else None)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position, self._order = int(state["epoch"]), int(state["position"]), None

"""A LeNet-style digit classifier that ganforge trains itself on a built-in labelled set, then reads with.

Features are the 128 activations of the penultimate layer (after its ReLU); logits feed IS and the stacked-
digits mode count. The classifier is trained once, on the CPU, deterministically: the first 90% of a seeded
permutation of the dataset, Adam with a one-cycle learning rate, random shifts of a pixel or two. Its accuracy
on the remaining 10% is stored with it. The weights are cached as safetensors under `$GANFORGE_CACHE` (else
`~/.cache/ganforge`) in a file whose name hashes the data and every training setting, so a change to either
trains a new classifier instead of reusing a stale one.

Measured on 2 shared CPU cores (one training thread): mnist5k trains in about 12 s to 98.2% held-out
accuracy (500 images), digits in about 3 s to 98.9% (180 images); the accuracy is stored in the file's
metadata and read back as `LeNetExtractor.heldout_accuracy`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError

from ganforge.config import DataConfig
from ganforge.data import TensorData, load_dataset
from ganforge.data.cache import default_cache_dir
from ganforge.engine.checkpoint import read_tensors, tensor_digest, write_tensors
from ganforge.errors import UserError
from ganforge.metrics.extractors.base import EXTRACTORS, ExtractorRequest

logger = logging.getLogger(__name__)

VERSION = "ganforge-lenet-1"  # change when the training code changes in a way the settings do not show
SUPPORTED = ("digits", "mnist5k")  # built-in labelled digit sets a classifier is trained on
HELDOUT_FRACTION = 0.1  # the last 10% of the seeded permutation is kept out of training
SPLIT_SEED = 0  # seed of that permutation
TRAINING_THREADS = 1  # CPU threads used in training: the weights depend on it (reduction order)


@dataclass(frozen=True)
class TrainingSettings:
    """Everything the trained weights depend on besides the data; all of it goes into the cache file name."""

    epochs: int
    lr: float = 2e-3  # peak of the one-cycle schedule
    batch_size: int = 64
    seed: int = 0  # initial weights, batch order and shifts
    widths: tuple[int, int] = (16, 32)  # channels of the two convolutions
    feature_dim: int = 128  # width of the penultimate layer: the features
    max_shift: int = 2  # random translation of training images, in pixels, each way


def default_settings(dataset: str, image_size: int) -> TrainingSettings:
    """Return the settings used for `dataset` at `image_size`: more epochs for the small digits set."""
    epochs = 30 if dataset == "digits" else 12  # digits has 1,617 training images, mnist5k 4,500
    return TrainingSettings(epochs=epochs, max_shift=max(1, image_size // 14))


class LeNet(nn.Module):
    """Two 3x3 convolutions with max-pooling, a hidden layer (the features) and a linear classifier."""

    def __init__(
        self,
        image_size: int,  # side of the square one-channel images
        num_classes: int = 10,
        widths: tuple[int, int] = (16, 32),  # channels of the two convolutions
        feature_dim: int = 128,  # width of the hidden layer
    ) -> None:
        super().__init__()
        if image_size < 4:
            raise ValueError(f"LeNet needs images of at least 4x4 pixels, not {image_size}")
        self.image_size = image_size
        self.body = nn.Sequential(
            nn.Conv2d(1, widths[0], 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(widths[0], widths[1], 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(widths[1] * (image_size // 4) ** 2, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, feature_dim) penultimate activations of images x (N, 1, S, S) in [-1, 1]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, num_classes) class logits of images x (N, 1, S, S) in [-1, 1]."""
        return self.head(self.body(x))


def _check_images(x: torch.Tensor, what: str) -> int:
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3]:
        raise ValueError(f"{what} must be one-channel square images (N, 1, S, S), not {tuple(x.shape)}")
    return x.shape[-1]


def _random_shifts(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Return x (B, 1, S, S) with each image moved by its own random offset; the border is background (-1)."""
    batch, size = x.shape[0], x.shape[-1]
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)  # (B, 1, S + 2m, S + 2m)
    rows, cols = torch.randint(0, 2 * max_shift + 1, (2, batch), generator=generator)
    steps = torch.arange(size)
    index = torch.arange(batch)[:, None, None]
    shifted = padded[index, 0, (rows[:, None] + steps)[:, :, None], (cols[:, None] + steps)[:, None, :]]
    return shifted[:, None]  # (B, 1, S, S)


@contextlib.contextmanager
def _training_threads() -> Iterator[None]:
    """Run torch on TRAINING_THREADS CPU threads inside the block, then restore the caller's setting.

    A fixed count keeps the weights independent of the machine's core count (one and two threads give
    different weights: the order of sums changes).
    One thread, because convolutions this small gain little from a second, and on a busy machine two threads
    that wait for each other are several times slower (measured: 12 mnist5k epochs took 17-21 s on one
    thread and 56-113 s on two, with other jobs running on the 2 cores).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAINING_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_classifier(
    x: torch.Tensor,  # (N, 1, S, S) images in [-1, 1]
    y: torch.Tensor,  # (N,) int64 labels in [0, num_classes)
    num_classes: int,
    epochs: int,
    seed: int,
    *,
    lr: float = 2e-3,  # peak of the one-cycle schedule
    batch_size: int = 64,
    widths: tuple[int, int] = (16, 32),
    feature_dim: int = 128,
    max_shift: int | None = None,  # random shifts in pixels; None: image_size // 14, at least 1; 0: none
) -> LeNet:
    """Return a LeNet trained on (x, y) on the CPU, in eval mode; the same arguments give the same weights.

    Adam with a one-cycle learning rate, random shifts of `max_shift` pixels, one CPU thread. The caller's
    random state is left untouched: all randomness comes from `seed`.
    """
    size = _check_images(x, "x")
    if y.shape != (len(x),) or len(x) == 0:
        raise ValueError(f"y must hold one label for each of the {len(x)} images, not shape {tuple(y.shape)}")
    shift = max(1, size // 14) if max_shift is None else max_shift
    x, y = x.detach().float().cpu(), y.detach().long().cpu()
    steps_per_epoch = -(-len(x) // batch_size)
    with torch.random.fork_rng(devices=[]), _training_threads():
        torch.manual_seed(seed)
        net = LeNet(size, num_classes, widths, feature_dim)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps_per_epoch)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), batch_size):
                index = order[start : start + batch_size]
                images = x[index] if shift == 0 else _random_shifts(x[index], shift, generator)
                loss = F.cross_entropy(net(images), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    return net.eval()


@torch.inference_mode()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Return the fraction of images x (N, 1, S, S) that `net` labels as y (N,)."""
    device = next(net.parameters()).device
    hits = sum(
        int((net(x[i : i + batch_size].to(device)).argmax(1).cpu() == y[i : i + batch_size]).sum())
        for i in range(0, len(x), batch_size)
    )
    return hits / max(1, len(x))


def split_indices(num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (train, held-out) indices: the first 90% and last 10% of a permutation seeded with SPLIT_SEED.

    The held-out images are never seen in training: real test data for CAS and for the accuracy check.
    """
    order = torch.randperm(num_samples, generator=torch.Generator().manual_seed(SPLIT_SEED))
    kept = num_samples - int(round(HELDOUT_FRACTION * num_samples))
    return order[:kept], order[kept:]


def _unsupported(dataset: str) -> UserError:
    return UserError(
        f"the lenet extractor is trained on a labelled digit set and supports {', '.join(SUPPORTED)}, "
        f"not {dataset!r} (use the inception or raw extractor)"
    )


def load_digits_data(dataset: str, image_size: int | None = None) -> TensorData:
    """Return the labelled dataset a lenet classifier for `dataset` trains on, resized to `image_size`."""
    if dataset not in SUPPORTED:
        raise _unsupported(dataset)
    return load_dataset(DataConfig(name=dataset, image_size=image_size))


def cache_dir() -> Path:
    """Return the folder of trained extractors: $GANFORGE_CACHE, else ~/.cache/ganforge."""
    return default_cache_dir()


def cache_key(dataset: str, data: TensorData, settings: TrainingSettings) -> str:
    """Return 16 hex digits of a sha256 over the dataset name, its tensors and the training settings."""
    digest = hashlib.sha256()
    recipe = {
        "version": VERSION,
        "dataset": dataset,
        "split": [SPLIT_SEED, HELDOUT_FRACTION],
        "threads": TRAINING_THREADS,
    }
    digest.update(json.dumps({**recipe, **asdict(settings)}, sort_keys=True).encode())
    for tensor in (data.x, data.y):
        digest.update(f"{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class LeNetExtractor:
    """The `lenet` extractor: a digit classifier trained on `request.data.name` (digits or mnist5k).

    It reads one-channel images of the request's shape (1, S, S); the classifier is trained at that size (the
    dataset resized when S differs from its own). Attributes besides the Extractor protocol:
    `heldout_accuracy` (on the 10% kept out of training), `path` (the cache file), `loaded_from_cache`
    (False when this construction trained the classifier), `net` (the LeNet, in eval mode).
    """

    name = "lenet"
    resize = "none"
    num_classes = 10

    def __init__(self, request: ExtractorRequest) -> None:
        data_info = request.data
        dataset = data_info.name
        if dataset not in SUPPORTED:
            raise _unsupported(dataset)
        shape = tuple(data_info.shape)
        if data_info.kind != "images" or len(shape) != 3 or shape[1] != shape[2]:
            raise UserError(f"the lenet extractor reads square images; {dataset!r} has shape {shape}")
        self.image_size = shape[-1]
        self.label = f"lenet:{dataset}"
        self.precision = request.precision
        self.batch_size = request.batch_size
        self.device = torch.device(request.device)

        data = load_digits_data(dataset, self.image_size)
        settings = default_settings(dataset, self.image_size)
        self.path = cache_dir() / f"lenet-{dataset}-{cache_key(dataset, data, settings)}.safetensors"
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten: leave the caller's RNG
            self.net = LeNet(self.image_size, self.num_classes, settings.widths, settings.feature_dim)
        cached = self._read_cache()
        self.loaded_from_cache = cached is not None
        if cached is None:
            cached = self._train(dataset, data, settings)
        state, self.heldout_accuracy = cached
        self.file_hash = tensor_digest(state)
        self.net.load_state_dict(state)
        self.net.to(self.device).eval()

    def _read_cache(self) -> tuple[dict[str, torch.Tensor], float] | None:
        """Return (weights, held-out accuracy) from the cache file, or None if it is missing or damaged."""
        if not self.path.is_file():
            return None
        try:
            metadata, state = read_tensors(self.path)
            if metadata.get("format") != VERSION:
                raise ValueError(f"format {metadata.get('format')!r} is not {VERSION!r}")
            self.net.load_state_dict(state)  # checks names and shapes
            return state, float(metadata["heldout_accuracy"])
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as exc:
            logger.warning("cached classifier %s is unusable (%s); training it again", self.path, exc)
            return None

    def _train(
        self, dataset: str, data: TensorData, settings: TrainingSettings
    ) -> tuple[dict[str, torch.Tensor], float]:
        logger.info("training the lenet classifier on %s (once; cached in %s)", dataset, self.path)
        train, heldout = split_indices(len(data.x))
        net = train_classifier(
            data.x[train],
            data.y[train],
            self.num_classes,
            settings.epochs,
            settings.seed,
            lr=settings.lr,
            batch_size=settings.batch_size,
            widths=settings.widths,
            feature_dim=settings.feature_dim,
            max_shift=settings.max_shift,
        )
        heldout_accuracy = accuracy(net, data.x[heldout], data.y[heldout])
        state = {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}
        metadata = {
            "format": VERSION,
            "dataset": dataset,
            "image_size": str(self.image_size),
            "settings": json.dumps(asdict(settings), sort_keys=True),
            "heldout_accuracy": repr(heldout_accuracy),
            "train_samples": str(len(train)),
            "heldout_samples": str(len(heldout)),
        }
        try:
            write_tensors(self.path, state, metadata)
        except OSError as exc:  # an unwritable cache costs a retraining next time, nothing else
            logger.warning("cannot cache the lenet classifier in %s (%s)", self.path, exc)
        logger.info("lenet on %s: held-out accuracy %.4f", dataset, heldout_accuracy)
        return state, heldout_accuracy

    def _run(self, samples: torch.Tensor, head: bool) -> np.ndarray:
        expected = (1, self.image_size, self.image_size)
        if samples.ndim != 4 or tuple(samples.shape[1:]) != expected:
            raise UserError(
                f"{self.label} reads one-channel images of shape (N, {', '.join(map(str, expected))}), "
                f"not {tuple(samples.shape)}; pass the channels of stacked images one at a time"
            )
        outputs = []
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"),
        ):
            for start in range(0, len(samples), self.batch_size):
                images = samples[start : start + self.batch_size].to(self.device, torch.float32)
                out = self.net(images) if head else self.net.features(images)
                outputs.append(out.float().cpu())
        if not outputs:
            width = self.num_classes if head else self.net.head.in_features
            return np.zeros((0, width))
        return torch.cat(outputs).double().numpy()

    def features(self, samples: torch.Tensor) -> np.ndarray:
        """Return (N, 128) float64 penultimate activations of images (N, 1, S, S) in [-1, 1]."""
        return self._run(samples, head=False)

    def logits(self, samples: torch.Tensor) -> np.ndarray:
        """Return (N, 10) float64 digit logits of images (N, 1, S, S) in [-1, 1]."""
        return self._run(samples, head=True)


EXTRACTORS.register("lenet", "a digit classifier trained on digits or mnist5k (cached): 128-d features")(
    LeNetExtractor
)

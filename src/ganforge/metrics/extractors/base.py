"""Feature extractors: what metrics compare. Registered by name; never downloaded.

An extractor turns samples in data space (images (N, C, H, W) in [-1, 1], or points (N, D)) into feature
vectors, and, when it is a classifier, into class logits. Everything a score depends on is recorded in its
manifest: `label`, `file_hash` and `resize`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch

from ganforge.data import DataInfo
from ganforge.registry import Registry

Precision = Literal["fp32", "bf16"]


class Extractor(Protocol):
    name: str  # registry name: "inception", "lenet", "raw"
    label: str  # how scores name it: "inception", "lenet:mnist5k", "raw"
    file_hash: str | None  # sha256 of the weights it runs (None when there are none)
    resize: str  # how inputs are resized before it, recorded in manifests, e.g. "bilinear-antialias-299"
    num_classes: int | None  # classes of its logits; None when it has no classifier head

    def features(self, samples: torch.Tensor) -> np.ndarray:
        """Return (N, d) float64 features of `samples` (data space, on the CPU)."""
        ...

    def logits(self, samples: torch.Tensor) -> np.ndarray:
        """Return (N, num_classes) float64 class logits; UserError if the extractor has no classifier."""
        ...


@dataclass(frozen=True)
class ExtractorRequest:
    """What a caller asks for: the data the samples look like, and how to run the extractor."""

    data: DataInfo  # the dataset the generator was trained on (shape, kind, name)
    precision: Precision = "fp32"  # bf16 runs the network under CPU/CUDA autocast
    batch_size: int = 256
    path: str | None = None  # a weights file to use instead of the default one (inception)
    device: str = "cpu"


EXTRACTORS: Registry[Callable[[ExtractorRequest], Extractor]] = Registry("extractor")

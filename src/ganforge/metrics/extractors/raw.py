"""The `raw` extractor: the samples themselves, flattened. For points, and as a baseline for images."""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import UserError
from ganforge.metrics.extractors.base import EXTRACTORS, ExtractorRequest


class RawExtractor:
    """Features are the flattened samples, (N, prod(shape)); there are no weights and no classifier."""

    name = "raw"
    label = "raw"
    file_hash = None
    resize = "none"
    num_classes = None

    def __init__(self, request: ExtractorRequest) -> None:
        self.request = request

    def features(self, samples: torch.Tensor) -> np.ndarray:
        """Return the samples as (N, d) float64, d the product of one sample's dimensions."""
        flat = samples.detach().reshape(len(samples), -1).cpu().numpy()
        return np.array(flat, dtype=np.float64)  # always a copy: callers may change it in place

    def logits(self, samples: torch.Tensor) -> np.ndarray:
        raise UserError(
            "the raw extractor has no classifier; scores that need class logits (IS) need the lenet "
            "extractor (digits, mnist5k)"
        )


EXTRACTORS.register("raw", "the samples themselves, flattened (points, or a pixel-space baseline)")(
    RawExtractor
)

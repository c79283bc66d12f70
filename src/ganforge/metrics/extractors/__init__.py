"""Feature extractors registered in EXTRACTORS: inception, lenet, raw."""

from ganforge.metrics.extractors import inception, lenet, raw  # noqa: F401  (registers the extractors)
from ganforge.metrics.extractors.base import EXTRACTORS, Extractor, ExtractorRequest, Precision

__all__ = ["EXTRACTORS", "Extractor", "ExtractorRequest", "Precision"]

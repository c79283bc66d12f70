"""Feature extractors registered in EXTRACTORS: inception, lenet, raw."""

from ganforge.metrics.extractors.base import EXTRACTORS, Extractor, ExtractorRequest, Precision

__all__ = ["EXTRACTORS", "Extractor", "ExtractorRequest", "Precision"]

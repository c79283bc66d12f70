"""Offline metrics: feature extractors, registered metrics, and evaluations stored with manifests.

Importing this package registers the extractors and metrics; the metric maths lives in plain functions
(fid.py, kid.py, inception_score.py, prdc.py, memorisation.py, modes.py).
"""

from ganforge.metrics.modes import ModeCoverage, mode_coverage, stacked_mode_coverage

__all__ = ["ModeCoverage", "mode_coverage", "stacked_mode_coverage"]

"""Offline metrics. For now: mode coverage on toy mixtures; FID/KID/IS and friends arrive with evaluation."""

from ganforge.metrics.modes import ModeCoverage, mode_coverage

__all__ = ["ModeCoverage", "mode_coverage"]

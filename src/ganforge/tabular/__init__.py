"""Synthetic tables: the TabularGAN estimator, its column transforms and nets."""

from ganforge.tabular.model import TabularGAN
from ganforge.tabular.resume import FitInterrupted

__all__ = ["FitInterrupted", "TabularGAN"]

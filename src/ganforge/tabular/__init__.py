"""Synthetic tables: the TabularGAN estimator, its column transforms and nets."""

from ganforge.tabular.model import TabularGAN

__all__ = ["TabularGAN"]

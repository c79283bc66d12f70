"""Monitors: callbacks that watch a run for mode collapse, an overpowering D, divergence and oscillation."""

from __future__ import annotations

from ganforge.config import MonitorsConfig
from ganforge.engine.callbacks import Callback


def default_monitors(config: MonitorsConfig) -> list[Callback]:
    """Return the monitors a run gets by default."""
    return []

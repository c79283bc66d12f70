"""The CLI's normal paths: listing what can be named, and the progress display."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from ganforge.cli import main
from ganforge.cli.progress import ProgressBar
from ganforge.config import preset_names, resolve
from ganforge.data import DATASETS
from ganforge.engine import Trainer
from ganforge.nets import NETS
from ganforge.objectives import OBJECTIVES
from ganforge.recipes import RECIPES


def test_list_prints_every_registry_and_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [*preset_names(), *DATASETS, *NETS, *OBJECTIVES, *RECIPES]:
        assert name in out
    assert main(["list", "presets"]) == 0
    assert capsys.readouterr().out.split() == ["presets:", *preset_names()]


def test_every_preset_resolves() -> None:
    for name in preset_names():
        assert resolve(preset=name).training.steps > 0


def test_progress_bar_shows_losses_probabilities_and_speed(tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200)
    config = resolve(
        preset="vanilla-ring8",
        overrides=[
            "training.steps=5",
            "training.batch_size=16",
            "data.num_samples=64",
            "logging.tensorboard=false",
        ],
    )
    Trainer(config, tmp_path, [ProgressBar(console, refresh_s=0.0)]).fit()
    shown = screen.getvalue()
    for text in ("train", "5/5", "loss_D", "loss_G", "D(x)", "D(G(z))", "steps/s"):
        assert text in shown, text

"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganforge.cli import main


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a run folder trained for 4 steps on ring8, with checkpoints at steps 2 and 4.

    Shared by the whole session: copy it (shutil.copytree) before changing anything in it.
    """
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    overrides = [
        "training.steps=4",
        "training.batch_size=16",
        "data.num_samples=64",
        "logging.tensorboard=false",
        "logging.checkpoint_every=2",
    ]
    argv = ["train", "--preset", "vanilla-ring8", "--out", str(run_dir)]
    for assignment in overrides:
        argv += ["--set", assignment]
    assert main(argv) == 0
    return run_dir

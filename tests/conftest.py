"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ganforge.cli import main


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point $GANFORGE_CACHE at a temporary folder for session- and module-scoped fixtures too."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("ganforge-cache-session")
        patch.setenv("GANFORGE_CACHE", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _test_cache(_session_cache: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """Give every test its own $GANFORGE_CACHE, so no test reads or writes ~/.cache/ganforge.

    A folder of its own, not inside tmp_path: some tests check what tmp_path holds.
    """
    folder = tmp_path_factory.mktemp("ganforge-cache")
    monkeypatch.setenv("GANFORGE_CACHE", str(folder))
    return folder


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    """Give back torch's thread count after each test: a Trainer built with `training.threads` and never fit
    keeps the count it set, and oneDNN's bf16 results depend on the number of threads."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


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

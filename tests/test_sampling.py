"""Sampling from a saved generator: a self-contained file, repeatable seeds, PNG and npz, TensorBoard."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import load_dataset


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-step DCGAN run on digits with EMA and TensorBoard on."""
    run_dir = tmp_path_factory.mktemp("digits") / "run"
    ganforge.train(
        preset="dcgan-digits",
        run_dir=run_dir,
        overrides=[
            "training.steps=6",
            "training.batch_size=16",
            "nets.generator.options.width=8",
            "nets.discriminator.options.width=8",
            "logging.checkpoint_every=3",
            "logging.log_every=2",
            "logging.sample_every=3",
            "training.ema_decay=0.9",
        ],
    )
    return run_dir


def test_generator_file_alone_is_enough(digits_run: Path, tmp_path: Path) -> None:
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(digits_run / "generator.safetensors", only)  # no config, no checkpoints, no recipe
    sampler = ganforge.load_generator(only)
    assert (sampler.step, sampler.weights, sampler.data.shape) == (6, "ema", (1, 8, 8))
    samples = sampler.sample(10, seed=3)
    assert samples.shape == (10, 1, 8, 8) and samples.abs().max() <= 1


def test_same_seed_same_samples_other_seed_other_samples(digits_run: Path) -> None:
    sampler = ganforge.load_generator(digits_run)
    first, again = (
        sampler.sample(20, seed=1),
        sampler.sample(20, seed=1, batch_size=7),
    )  # batching is invisible
    assert torch.equal(first, again)
    assert not torch.equal(first, sampler.sample(20, seed=2))


def test_unconditional_generator_refuses_labels(digits_run: Path) -> None:
    with pytest.raises(ganforge.UserError, match="unconditional"):
        ganforge.load_generator(digits_run).sample(4, labels=[1, 2, 3, 4])


def test_cli_writes_a_grid_and_an_npz_that_loads_back_as_data(digits_run: Path, tmp_path: Path) -> None:
    assert (
        main(["sample", str(digits_run), "--n", "12", "--seed", "0", "--out", str(tmp_path / "g.png")]) == 0
    )
    grid = Image.open(tmp_path / "g.png")
    assert grid.mode == "L" and grid.width > 4 * 8
    assert (
        main(["sample", str(digits_run), "--n", "12", "--seed", "0", "--out", str(tmp_path / "s.npz")]) == 0
    )
    with np.load(tmp_path / "s.npz") as archive:
        assert archive["x"].dtype == np.uint8 and archive["x"].shape == (12, 1, 8, 8)
    data = load_dataset(DataConfig(name=f"npz:{tmp_path / 's.npz'}"))
    expected = ganforge.load_generator(digits_run).sample(12, seed=0)
    assert data.info.shape == (1, 8, 8)
    assert torch.allclose(data.x, expected, atol=1 / 127.5 + 1e-6)  # uint8 quantisation only


def test_points_sample_to_a_scatter_plot(tmp_path: Path) -> None:
    run = ganforge.train(
        preset="vanilla-ring8",
        run_dir=tmp_path / "ring",
        overrides=[
            "training.steps=3",
            "training.batch_size=16",
            "data.num_samples=64",
            "logging.tensorboard=false",
        ],
    )
    path = ganforge.load_generator(run.run_dir).save(tmp_path / "points.png", n=100, seed=0)
    assert Image.open(path).size == (500, 500)


def test_tensorboard_gets_the_scalars_and_sample_grids(digits_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(digits_run / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"loss_D", "loss_G", "D_x", "D_G_z"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("loss_D")] == [2, 4, 6]
    assert "samples" in tags["images"]

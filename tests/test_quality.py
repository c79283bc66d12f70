"""Real, short trainings with fixed seeds: the GANs must actually learn, not just run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import ganforge
from ganforge.data import MIXTURES
from ganforge.metrics import mode_coverage

pytestmark = pytest.mark.slow


def test_nonsaturating_vanilla_gan_covers_the_ring(tmp_path) -> None:
    result = ganforge.train(
        preset="vanilla-ring8",
        overrides=["training.steps=2000", "logging.tensorboard=false", "objective.name=nonsaturating"],
        run_dir=tmp_path,
    )
    samples = ganforge.load_generator(result.run_dir).sample(2500, seed=0).numpy()
    coverage = mode_coverage(samples, *MIXTURES["ring8"])
    assert coverage.modes_covered >= 6, coverage


def test_dcgan_on_digits_makes_many_different_digits(tmp_path) -> None:
    result = ganforge.train(
        preset="dcgan-digits", overrides=["training.steps=800", "logging.tensorboard=false"], run_dir=tmp_path
    )
    digits = load_digits()
    real = digits.images.reshape(len(digits.images), -1) / 8.0 - 1.0  # the same [-1, 1] scaling as the data
    classifier = LogisticRegression(max_iter=2000).fit(real, digits.target)
    samples = ganforge.load_generator(result.run_dir).sample(1000, seed=0).numpy().reshape(1000, -1)
    counts = np.bincount(classifier.predict(samples), minlength=10)
    assert (counts >= 10).sum() >= 8, counts  # at least 8 classes, each with at least 1% of the samples


STABLE_RING8 = [
    "--preset",
    "stable-ring8",
    "--set",
    "training.steps=3000",
    "--set",
    "logging.tensorboard=false",
]


@pytest.fixture(scope="module")
def stable_ring8_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stable-ring8") / "run"
    ganforge.train(preset="stable-ring8", overrides=STABLE_RING8[3::2], run_dir=folder)
    return folder


def test_best_toy_preset_covers_every_ring_mode(stable_ring8_run: Path) -> None:
    untruncated = ganforge.load_generator(stable_ring8_run, jacobian_reject=0.0).sample(2500, seed=0).numpy()
    raw = mode_coverage(untruncated, *MIXTURES["ring8"])
    assert raw.modes_covered == 8, raw
    assert raw.high_quality >= 0.85, raw
    # The preset samples with Jacobian truncation: it drops the in-between samples and keeps every mode.
    samples = ganforge.load_generator(stable_ring8_run).sample(2500, seed=0).numpy()
    coverage = mode_coverage(samples, *MIXTURES["ring8"])
    assert coverage.modes_covered == 8, coverage
    assert coverage.high_quality >= max(raw.high_quality, 0.95), (coverage, raw)
    assert coverage.reverse_kl <= 0.05, coverage


def test_two_processes_train_as_well_as_one_with_the_same_global_batch(
    stable_ring8_run: Path, tmp_path: Path
) -> None:
    # `--nproc 2`: DDP over gloo, each process 128 of the 256 samples a step and one CPU thread. The noise
    # differs from the one-process run (each rank has its own stream), so the runs are compared on quality,
    # not weights: the same modes, high-quality fraction within 3 points, reverse KL within 0.02.
    env = {key: value for key, value in os.environ.items() if key != "WORLD_SIZE"}
    command = [sys.executable, "-m", "ganforge", "train", *STABLE_RING8, "--nproc", "2", "--out", "run"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    scores = []
    for run in (stable_ring8_run, tmp_path / "run"):
        samples = ganforge.load_generator(run).sample(2500, seed=0).numpy()
        scores.append(mode_coverage(samples, *MIXTURES["ring8"]))
    one, two = scores
    assert two.modes_covered == one.modes_covered == 8, scores
    assert abs(two.high_quality - one.high_quality) <= 0.03, scores
    assert abs(two.reverse_kl - one.reverse_kl) <= 0.02, scores

"""Real, short trainings with fixed seeds: the GANs must actually learn, not just run."""

from __future__ import annotations

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


def test_best_toy_preset_covers_every_ring_mode(tmp_path) -> None:
    result = ganforge.train(
        preset="stable-ring8",
        overrides=["training.steps=3000", "logging.tensorboard=false"],
        run_dir=tmp_path,
    )
    untruncated = ganforge.load_generator(result.run_dir, jacobian_reject=0.0).sample(2500, seed=0).numpy()
    raw = mode_coverage(untruncated, *MIXTURES["ring8"])
    assert raw.modes_covered == 8, raw
    assert raw.high_quality >= 0.85, raw
    # The preset samples with Jacobian truncation: it drops the in-between samples and keeps every mode.
    samples = ganforge.load_generator(result.run_dir).sample(2500, seed=0).numpy()
    coverage = mode_coverage(samples, *MIXTURES["ring8"])
    assert coverage.modes_covered == 8, coverage
    assert coverage.high_quality >= max(raw.high_quality, 0.95), (coverage, raw)
    assert coverage.reverse_kl <= 0.05, coverage

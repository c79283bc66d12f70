"""Jacobian truncation: the norm itself, the threshold, the sampler that rejects, and the setting's journey
from the run config to the saved generator, `evaluate` and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import ganforge
from ganforge.cli import main
from ganforge.data import DataInfo
from ganforge.errors import UserError
from ganforge.metrics.evaluate import evaluate
from ganforge.sampling import Sampler, jacobian_norms

POINTS = DataInfo("toy", "points", (2,), None)


class Squares(nn.Module):
    """G(z) = scale * z**2 elementwise: its Jacobian is diag(2 * scale * z), of norm 2 * scale * ||z||."""

    latent_dim = 2

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.5))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.scale * z**2


def test_exact_norm_of_a_linear_map_is_its_frobenius_norm() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(3, 5)
    z = torch.randn(7, 3)
    with torch.no_grad():
        norms = jacobian_norms(linear, z)
    assert torch.allclose(norms, linear.weight.norm().expand(7), rtol=1e-5)


def test_exact_norm_of_a_nonlinear_map_and_the_probe_estimate() -> None:
    net, z = Squares(), torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        exact = jacobian_norms(net, z)
        probes = torch.randn(4000, *z.shape, generator=torch.Generator().manual_seed(2))
        estimate = jacobian_norms(net, z, probes)
    assert torch.allclose(exact, 3.0 * z.norm(dim=1), rtol=1e-5)
    assert torch.allclose(estimate, exact, rtol=0.1)  # unbiased for the square; 4,000 probes: a few %


def test_sampler_rejects_the_steepest_latents_and_keeps_seeds_repeatable() -> None:
    sampler = Sampler(Squares(), POINTS, jacobian_reject=0.25)
    threshold = sampler.truncation_threshold()
    # The norm is 3 ||z|| and ||z||^2 ~ chi2(2): a quarter of latents have ||z|| above sqrt(2 ln 4).
    assert threshold == pytest.approx(3.0 * (2 * torch.log(torch.tensor(4.0))).sqrt().item(), rel=0.05)
    latents = sampler.truncated_latents(1000, seed=3)
    assert latents.shape == (1000, 2)
    assert (3.0 * latents.norm(dim=1) <= threshold * (1 + 1e-6)).all()
    samples = sampler.sample(1000, seed=3)
    assert torch.equal(samples, sampler.decode(latents))
    assert torch.equal(samples, sampler.sample(1000, seed=3))
    assert not torch.equal(samples, sampler.sample(1000, seed=4))
    plain = Sampler(Squares(), POINTS)
    assert torch.equal(plain.sample(50, seed=3), plain.decode(plain.latents(50, seed=3)))
    with pytest.raises(UserError, match="jacobian_reject"):
        Sampler(Squares(), POINTS, jacobian_reject=0.95)


def test_the_run_setting_reaches_the_saved_generator_evaluate_and_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ganforge.train(
        preset="vanilla-ring8",
        run_dir=tmp_path / "ring",
        overrides=[
            "training.steps=20",
            "training.batch_size=32",
            "data.num_samples=256",
            "logging.tensorboard=false",
            "sampling.jacobian_reject=0.2",
        ],
    ).run_dir
    sampler = ganforge.load_generator(run)
    assert sampler.jacobian_reject == 0.2
    kept = sampler.truncated_latents(300, seed=0)
    assert (sampler.latent_norms(kept) <= sampler.truncation_threshold()).all()
    assert torch.equal(sampler.sample(300, seed=0), sampler.decode(kept))
    untruncated = ganforge.load_generator(run, jacobian_reject=0.0)
    assert torch.equal(untruncated.sample(300, seed=0), untruncated.decode(untruncated.latents(300, seed=0)))

    scores = evaluate(run, ["modes"], n=200, write=True)
    assert scores.scores[0].manifest["generator"]["jacobian_reject"] == 0.2
    stored = json.loads(scores.path.read_text())
    assert stored["settings"]["jacobian_reject"] == 0.2
    assert main(["evaluate", "--rerun", str(scores.path)]) == 0  # the same truncation when recomputed
    assert "DIFFERENT" not in capsys.readouterr().out
    off = evaluate(run, ["modes"], n=200, write=False, jacobian_reject=0.0)
    assert off.scores[0].manifest["generator"]["jacobian_reject"] == 0.0

    out = tmp_path / "s.npz"
    assert main(["sample", str(run), "--n", "40", "--seed", "1", "--out", str(out)]) == 0
    assert main(["sample", str(run), "--n", "40", "--jacobian-reject", "1.5", "--out", str(out)]) == 2
    assert "--jacobian-reject must be in [0, 0.9)" in capsys.readouterr().err


def test_truncation_with_probe_estimates_on_a_convolutional_generator(tmp_path: Path) -> None:
    run = ganforge.train(
        preset="dcgan-digits",
        run_dir=tmp_path / "digits",
        overrides=[
            "training.steps=2",
            "training.batch_size=8",
            "nets.generator.options.width=8",
            "nets.discriminator.options.width=8",
            "logging.tensorboard=false",
        ],
    ).run_dir
    sampler = ganforge.load_generator(run, jacobian_reject=0.5)
    assert sampler.latent_dim > 8  # norms are estimated from probes here
    first = sampler.sample(20, seed=5)
    assert first.shape == (20, *sampler.data.shape)
    assert torch.equal(first, sampler.sample(20, seed=5))
    assert (sampler.latent_norms(sampler.truncated_latents(20, seed=5)) > 0).all()

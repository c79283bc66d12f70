"""Adversarial losses against values computed by hand from their definitions, and their sign convention."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.objectives import (
    OBJECTIVES,
    minimax_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
)


def sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


REAL = [2.0, -1.0]
FAKE = [0.5, -3.0]


def test_minimax_discriminator_loss_matches_its_definition() -> None:
    # -mean log D(x) - mean log(1 - D(G(z))) with D = sigmoid(logit)
    expected = -sum(math.log(sigmoid(v)) for v in REAL) / 2 - sum(math.log(1 - sigmoid(v)) for v in FAKE) / 2
    got = minimax_discriminator_loss(torch.tensor(REAL), torch.tensor(FAKE)).item()
    assert got == pytest.approx(expected, abs=1e-6)
    assert got == pytest.approx(
        1.2314274, abs=1e-6
    )  # written out: (0.126928 + 1.313262)/2 + (0.974077 + 0.048587)/2


def test_generator_losses_match_their_definitions() -> None:
    minimax = sum(math.log(1 - sigmoid(v)) for v in FAKE) / 2  # mean log(1 - D(G(z)))
    nonsaturating = -sum(math.log(sigmoid(v)) for v in FAKE) / 2  # -mean log D(G(z))
    assert minimax_generator_loss(torch.tensor(FAKE)).item() == pytest.approx(minimax, abs=1e-6)
    assert nonsaturating_generator_loss(torch.tensor(FAKE)).item() == pytest.approx(nonsaturating, abs=1e-6)


def test_values_at_the_equilibrium() -> None:
    # D(x) = D(G(z)) = 1/2: D's loss is 2 log 2, the minimax G loss -log 2, the non-saturating one log 2.
    zero = torch.zeros(4)
    assert minimax_discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert minimax_generator_loss(zero).item() == pytest.approx(-math.log(2))
    assert nonsaturating_generator_loss(zero).item() == pytest.approx(math.log(2))


def test_sign_convention_higher_logit_means_more_real() -> None:
    low, high = torch.tensor([-1.0]), torch.tensor([1.0])
    # D improves by raising real logits and lowering fake ones.
    assert minimax_discriminator_loss(high, low) < minimax_discriminator_loss(low, low)
    assert minimax_discriminator_loss(low, low) < minimax_discriminator_loss(low, high)
    # G improves (both losses fall) when D scores its samples as more real.
    assert minimax_generator_loss(high) < minimax_generator_loss(low)
    assert nonsaturating_generator_loss(high) < nonsaturating_generator_loss(low)


def test_nonsaturating_loss_keeps_its_gradient_where_minimax_saturates() -> None:
    # Early in training D rejects fakes confidently (very negative logits).
    rejected = torch.tensor([-8.0], requires_grad=True)
    (minimax_grad,) = torch.autograd.grad(minimax_generator_loss(rejected), rejected)
    (nonsat_grad,) = torch.autograd.grad(nonsaturating_generator_loss(rejected), rejected)
    assert abs(minimax_grad.item()) == pytest.approx(sigmoid(-8.0), rel=1e-4)  # ~3e-4: vanishing
    assert nonsat_grad.item() == pytest.approx(-(1 - sigmoid(-8.0)), rel=1e-4)  # ~-1: G still learns


def test_losses_are_finite_at_extreme_logits() -> None:
    extreme = torch.tensor([-200.0, 200.0])
    for value in (
        minimax_discriminator_loss(extreme, extreme),
        minimax_generator_loss(extreme),
        nonsaturating_generator_loss(extreme),
    ):
        assert torch.isfinite(value)


def test_registered_objectives_pair_the_right_functions() -> None:
    assert OBJECTIVES.get("minimax").generator_loss is minimax_generator_loss
    assert OBJECTIVES.get("nonsaturating").generator_loss is nonsaturating_generator_loss
    assert OBJECTIVES.get("nonsaturating").discriminator_loss is minimax_discriminator_loss

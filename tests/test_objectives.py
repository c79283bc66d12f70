"""Adversarial losses against values computed by hand from their definitions, and their sign convention."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.objectives import (
    OBJECTIVES,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    lsgan_probabilities,
    minimax_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
    relativistic_probabilities,
    sigmoid_probabilities,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
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


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_label_smoothing_moves_the_real_target() -> None:
    # real_label t = 0.9: t mean softplus(-real) + (1 - t) mean softplus(real) + mean softplus(fake)
    # = 0.9 (0.126928 + 1.313262)/2 + 0.1 (2.126928 + 0.313262)/2 + (0.974077 + 0.048587)/2
    # = 0.648086 + 0.122010 + 0.511332 = 1.281427, i.e. the unsmoothed 1.231427 plus 0.1 * mean(real).
    got = minimax_discriminator_loss(torch.tensor(REAL), torch.tensor(FAKE), real_label=0.9).item()
    assert got == pytest.approx(1.2814274, abs=1e-6)


def test_lsgan_losses_match_hand_values() -> None:
    # D: 0.5 mean((2-1)^2, (-1-1)^2) + 0.5 mean(0.5^2, (-3)^2) = 0.5 * 2.5 + 0.5 * 4.625 = 3.5625
    assert lsgan_discriminator_loss(torch.tensor(REAL), torch.tensor(FAKE)).item() == pytest.approx(3.5625)
    # G: 0.5 mean((0.5-1)^2, (-3-1)^2) = 0.5 * (0.25 + 16) / 2 = 4.0625
    assert lsgan_generator_loss(torch.tensor(FAKE)).item() == pytest.approx(4.0625)


def test_hinge_losses_match_hand_values() -> None:
    # D: mean(relu(1-2), relu(1+1)) + mean(relu(1+0.5), relu(1-3)) = mean(0, 2) + mean(1.5, 0) = 1.75
    assert hinge_discriminator_loss(torch.tensor(REAL), torch.tensor(FAKE)).item() == pytest.approx(1.75)
    # G: -mean(0.5, -3) = 1.25
    assert hinge_generator_loss(torch.tensor(FAKE)).item() == pytest.approx(1.25)


def test_wasserstein_losses_match_hand_values() -> None:
    # D: mean(fake) - mean(real) = -1.25 - 0.5 = -1.75; G: -mean(fake) = 1.25
    assert wasserstein_discriminator_loss(torch.tensor(REAL), torch.tensor(FAKE)).item() == pytest.approx(
        -1.75
    )
    assert wasserstein_generator_loss(torch.tensor(FAKE)).item() == pytest.approx(1.25)


def test_relativistic_losses_match_hand_values() -> None:
    # mean(real) = 0.5, mean(fake) = -1.25; real - mean(fake) = (3.25, 0.25), fake - mean(real) = (0, -3.5)
    d_expected = (softplus(-3.25) + softplus(-0.25)) / 2 + (softplus(0.0) + softplus(-3.5)) / 2
    g_expected = (softplus(-0.0) + softplus(3.5)) / 2 + (softplus(3.25) + softplus(0.25)) / 2
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert relativistic_discriminator_loss(real, fake).item() == pytest.approx(d_expected, abs=1e-6)
    assert relativistic_discriminator_loss(real, fake).item() == pytest.approx(
        0.6684392, abs=1e-6
    )  # written out: (0.038041 + 0.575939)/2 + (0.693147 + 0.029750)/2
    assert relativistic_generator_loss(fake, real).item() == pytest.approx(g_expected, abs=1e-6)
    assert relativistic_generator_loss(fake, real).item() == pytest.approx(
        4.1684392, abs=1e-6
    )  # written out: (0.693147 + 3.529750)/2 + (3.288041 + 0.825939)/2


def test_probability_readings() -> None:
    real, fake = torch.tensor([-0.5, 0.3, 1.7]), torch.tensor([0.2, 2.0, -1.0])
    lsgan_real, lsgan_fake = lsgan_probabilities(real, fake)
    assert lsgan_real.tolist() == pytest.approx([0.0, 0.3, 1.0])
    assert lsgan_fake.tolist() == pytest.approx([0.2, 1.0, 0.0])
    # mean(real) = 0.5, mean(fake) = 0.4
    rel_real, rel_fake = relativistic_probabilities(real, fake)
    assert rel_real.tolist() == pytest.approx([sigmoid(v - 0.4) for v in (-0.5, 0.3, 1.7)], abs=1e-6)
    assert rel_fake.tolist() == pytest.approx([sigmoid(v - 0.5) for v in (0.2, 2.0, -1.0)], abs=1e-6)


def test_new_losses_at_the_equilibrium() -> None:
    # When D cannot tell real from fake it outputs the same score for both.
    half, zero = torch.full((4,), 0.5), torch.zeros(4)
    # LSGAN's optimal D at p_g = p_data is (b p_data + a p_g)/(p_data + p_g) = 1/2:
    # D loss 0.5 * 0.25 + 0.5 * 0.25 = 0.25, G loss 0.5 * 0.25 = 0.125
    assert lsgan_discriminator_loss(half, half).item() == pytest.approx(0.25)
    assert lsgan_generator_loss(half).item() == pytest.approx(0.125)
    assert hinge_discriminator_loss(zero, zero).item() == pytest.approx(2.0)
    assert hinge_generator_loss(zero).item() == pytest.approx(0.0)
    assert wasserstein_discriminator_loss(half, half).item() == pytest.approx(0.0)
    # Any equal scores: every relative logit is 0, so each term is log 2.
    assert relativistic_discriminator_loss(half, half).item() == pytest.approx(2 * math.log(2))
    assert relativistic_generator_loss(half, half).item() == pytest.approx(2 * math.log(2))


def test_new_losses_follow_the_sign_convention() -> None:
    # Scores inside [0, 1], where LSGAN's squares are monotone too.
    low, high = torch.tensor([0.1, 0.2]), torch.tensor([0.9, 0.8])
    for d_loss in (
        lsgan_discriminator_loss,
        hinge_discriminator_loss,
        wasserstein_discriminator_loss,
        relativistic_discriminator_loss,
    ):
        assert d_loss(high, low) < d_loss(low, low) < d_loss(low, high), d_loss.__name__
    for g_loss in (lsgan_generator_loss, hinge_generator_loss, wasserstein_generator_loss):
        assert g_loss(high) < g_loss(low), g_loss.__name__
    assert relativistic_generator_loss(high, low) < relativistic_generator_loss(low, low)


def test_new_losses_are_finite_at_extreme_logits() -> None:
    extreme = torch.tensor([-200.0, 200.0])
    for value in (
        lsgan_discriminator_loss(extreme, extreme),
        lsgan_generator_loss(extreme),
        hinge_discriminator_loss(extreme, extreme),
        hinge_generator_loss(extreme),
        wasserstein_discriminator_loss(extreme, extreme),
        wasserstein_generator_loss(extreme),
        relativistic_discriminator_loss(extreme, -extreme),
        relativistic_generator_loss(extreme, -extreme),
    ):
        assert torch.isfinite(value)


@pytest.mark.parametrize(
    ("name", "d_loss", "g_loss"),
    [
        ("minimax", minimax_discriminator_loss, minimax_generator_loss),
        ("nonsaturating", minimax_discriminator_loss, nonsaturating_generator_loss),
        ("lsgan", lsgan_discriminator_loss, lsgan_generator_loss),
        ("hinge", hinge_discriminator_loss, hinge_generator_loss),
        ("wgan", wasserstein_discriminator_loss, wasserstein_generator_loss),
        ("wgan-gp", wasserstein_discriminator_loss, wasserstein_generator_loss),
    ],
)
def test_registered_objectives_pair_the_right_functions(name: str, d_loss, g_loss) -> None:
    objective = OBJECTIVES.get(name)
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert objective.discriminator_loss(real, fake).item() == pytest.approx(d_loss(real, fake).item())
    # Fake-only generator losses ignore real scores, whether or not they are passed.
    assert objective.generator_loss(fake).item() == pytest.approx(g_loss(fake).item())
    assert objective.generator_loss(fake, real).item() == pytest.approx(g_loss(fake).item())
    assert not objective.generator_uses_real


def test_registered_relativistic_objective_uses_real_scores() -> None:
    objective = OBJECTIVES.get("relativistic")
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert objective.generator_uses_real
    assert objective.generator_loss(fake, real).item() == pytest.approx(4.1684392, abs=1e-6)
    assert objective.discriminator_loss(real, fake).item() == pytest.approx(0.6684392, abs=1e-6)
    assert objective.probabilities is relativistic_probabilities


def test_registered_objective_settings() -> None:
    assert OBJECTIVES.get("wgan").defaults == {"weight_clip": 0.01, "n_critic": 5}
    assert OBJECTIVES.get("wgan-gp").defaults == {"gradient_penalty": 10.0, "n_critic": 5}
    assert OBJECTIVES.get("wgan").probabilities is None
    assert OBJECTIVES.get("wgan-gp").probabilities is None
    assert OBJECTIVES.get("lsgan").probabilities is lsgan_probabilities
    assert OBJECTIVES.get("hinge").probabilities is sigmoid_probabilities
    for name in ("lsgan", "hinge", "relativistic"):
        assert dict(OBJECTIVES.get(name).defaults) == {}
    # Only the cross-entropy D loss takes real_label=.
    assert [n for n in OBJECTIVES.names() if OBJECTIVES.get(n).label_smoothing] == [
        "minimax",
        "nonsaturating",
    ]
    for name in OBJECTIVES.names():
        assert OBJECTIVES.describe(name), name

"""Regularisers, DiffAugment and the stabilising layers, against values worked out by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.nets.layers import MinibatchStd, apply_spectral_norm
from ganforge.objectives.diffaugment import POLICIES, diff_augment
from ganforge.objectives.regularisers import (
    LeCamAnchors,
    add_instance_noise,
    clip_weights_,
    gradient_penalty,
    instance_noise_std,
    lecam_penalty,
    pack,
    packed_shape,
    r1_penalty,
)

# ----- gradient penalty and R1 -----


def test_gradient_penalty_of_a_linear_critic_is_exact() -> None:
    # D(x) = w . x has gradient w everywhere, so the penalty is (||w|| - 1)^2 = (5 - 1)^2 = 16.
    w = torch.tensor([1.0, 2.0, 2.0, 4.0], requires_grad=True)  # ||w|| = sqrt(1 + 4 + 4 + 16) = 5
    real = torch.randn(6, 1, 2, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    fake = torch.randn(6, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    penalty = gradient_penalty(lambda x: x.flatten(1) @ w, real, fake)
    assert penalty.item() == pytest.approx(16.0)
    # Back-propagates into the critic: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 1.6 w.
    penalty.backward()
    assert w.grad is not None
    assert torch.allclose(w.grad, 1.6 * w.detach())
    assert real.grad is None  # the samples are detached


def test_gradient_penalty_interpolates_once_per_sample() -> None:
    seen: list[torch.Tensor] = []

    def critic(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach())
        return x.square().flatten(1).sum(dim=1)

    real, fake = torch.ones(16, 3, 2, 2, requires_grad=True), torch.zeros(16, 3, 2, 2)
    first = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    again = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    assert first.item() == again.item()  # the generator makes eps repeat
    # x_hat = eps real + (1 - eps) fake = eps: one eps in [0, 1] per sample, shared by all its pixels.
    eps = seen[0].flatten(1)
    assert torch.allclose(eps, eps[:, :1].expand_as(eps))
    assert ((eps >= 0) & (eps <= 1)).all()
    assert eps[:, 0].unique().numel() == 16
    # grad of ||x||^2 is 2 x, norm 2 eps sqrt(12): penalty = mean (2 sqrt(12) eps - 1)^2
    expected = ((2 * 12**0.5 * eps[:, 0] - 1) ** 2).mean()
    assert first.item() == pytest.approx(expected.item(), rel=1e-5)
    first.backward()
    assert real.grad is None  # the penalty trains the critic only, never what produced the samples


def test_gradient_penalty_target_and_shape_check() -> None:
    w = torch.tensor([3.0, 4.0])
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    assert gradient_penalty(lambda x: x @ w, real, fake, target=5.0).item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(lambda x: x @ w, real, torch.randn(3, 2))


def test_r1_of_a_quadratic_critic() -> None:
    # D(x) = a/2 ||x||^2 has gradient a x, so R1 = mean a^2 ||x||^2.
    a = torch.tensor(3.0, requires_grad=True)
    x = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    scores = a / 2 * x.square().flatten(1).sum(dim=1)
    penalty = r1_penalty(scores, x)
    squared_norms = x.detach().square().flatten(1).sum(dim=1)
    assert penalty.item() == pytest.approx((9.0 * squared_norms).mean().item(), rel=1e-6)
    penalty.backward()  # kept graph: d/da mean a^2 ||x||^2 = 2 a mean ||x||^2
    assert a.grad is not None
    assert a.grad.item() == pytest.approx((6.0 * squared_norms).mean().item(), rel=1e-6)


# ----- LeCam -----


def test_lecam_penalty_on_hand_values() -> None:
    real, fake = torch.tensor([1.0, -0.5]), torch.tensor([0.2, -1.0])
    # relu(real - a_F) with a_F = -0.4: (1.4, 0) -> mean(1.96, 0) = 0.98
    # relu(a_R - fake) with a_R = 0.3: (0.1, 1.3) -> mean(0.01, 1.69) = 0.85
    assert lecam_penalty(real, fake, 0.3, -0.4).item() == pytest.approx(1.83)
    assert lecam_penalty(real, fake, torch.tensor(0.3), torch.tensor(-0.4)).item() == pytest.approx(1.83)
    # Nothing to penalise when reals sit below the fake anchor and fakes above the real anchor.
    assert lecam_penalty(real, fake, -2.0, 2.0).item() == 0.0


def test_lecam_anchors_copy_first_then_average() -> None:
    anchors = LeCamAnchors(decay=0.9)
    anchors.update(torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0]))  # first: copy the means 2, -1
    assert (anchors.real.item(), anchors.fake.item()) == pytest.approx((2.0, -1.0))
    anchors.update(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0]))
    # 0.9 * 2 + 0.1 * 0 = 1.8;  0.9 * -1 + 0.1 * 1 = -0.8
    assert (anchors.real.item(), anchors.fake.item()) == pytest.approx((1.8, -0.8))
    restored = LeCamAnchors(decay=0.9)
    restored.load_state_dict(anchors.state_dict())
    assert set(anchors.state_dict()) == {"real", "fake", "updates"}
    restored.update(torch.tensor([1.8]), torch.tensor([-0.8]))  # restored: averages, does not copy
    assert (restored.real.item(), restored.fake.item()) == pytest.approx((1.8, -0.8))
    with pytest.raises(ValueError):
        LeCamAnchors(decay=1.0)


def test_lecam_anchors_do_not_track_gradients() -> None:
    anchors = LeCamAnchors()
    scores = torch.tensor([1.0, 2.0], requires_grad=True)
    anchors.update(scores, scores)
    assert not anchors.real.requires_grad


# ----- instance noise, packing, clipping -----


def test_instance_noise_schedule() -> None:
    assert instance_noise_std(0.1, 0, 100) == pytest.approx(0.1)
    assert instance_noise_std(0.1, 25, 100) == pytest.approx(0.075)
    assert instance_noise_std(0.1, 50, 100) == pytest.approx(0.05)
    assert instance_noise_std(0.1, 100, 100) == 0.0
    assert instance_noise_std(0.1, 1000, 100) == 0.0
    assert instance_noise_std(0.1, 0, 0) == 0.0
    with pytest.raises(ValueError):
        instance_noise_std(0.1, -1, 100)


def test_add_instance_noise() -> None:
    x = torch.zeros(100_000)
    assert add_instance_noise(x, 0.0) is x
    torch.manual_seed(0)
    noisy = add_instance_noise(x, 0.5)
    assert noisy.std().item() == pytest.approx(0.5, rel=0.02)
    assert noisy.mean().item() == pytest.approx(0.0, abs=0.01)


def test_pack_groups_consecutive_samples() -> None:
    x = torch.arange(6 * 2 * 3, dtype=torch.float32).reshape(6, 2, 3)
    packed = pack(x, 3)
    assert packed.shape == (2, 6, 3)
    assert torch.equal(packed[0], torch.cat([x[0], x[1], x[2]]))
    assert torch.equal(packed[1], torch.cat([x[3], x[4], x[5]]))
    assert pack(torch.randn(8, 5), 2).shape == (4, 10)
    assert torch.equal(pack(x, 1), x)
    with pytest.raises(ValueError, match=r"5.*2"):
        pack(torch.randn(5, 3), 2)
    assert packed_shape((3, 8, 8), 2) == (6, 8, 8)
    assert packed_shape([4], 3) == (12,)


def test_clip_weights_bounds_every_parameter() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10)
    before = [p.detach().clone() for p in net.parameters()]
    clip_weights_(net, 0.01)
    for old, new in zip(before, net.parameters(), strict=True):
        assert new.abs().max().item() <= 0.01
        assert torch.equal(new, old.clamp(-0.01, 0.01))
    with pytest.raises(ValueError):
        clip_weights_(net, 0.0)


# ----- spectral norm -----


def test_spectral_norm_brings_the_largest_singular_value_to_one() -> None:
    torch.manual_seed(0)
    layers = nn.ModuleDict(
        {"fc": nn.Linear(32, 16), "conv": nn.Conv2d(3, 8, 3), "deconv": nn.ConvTranspose2d(8, 3, 4, 2, 1)}
    )
    for layer in layers.values():
        nn.init.normal_(layer.weight, 0.0, 1.0)  # largest singular values far above 1

    def sigma(name: str) -> float:
        weight = layers[name].weight
        # A transposed convolution's weight is (in, out, k, k); it is normalised over its output channels.
        matrix = weight.transpose(0, 1).flatten(1) if name == "deconv" else weight.flatten(1)
        return torch.linalg.matrix_norm(matrix.detach(), ord=2).item()

    assert all(sigma(name) > 3 for name in layers)
    assert apply_spectral_norm(layers) is layers
    apply_spectral_norm(layers)  # applying twice must not wrap twice
    assert len(layers["fc"].parametrizations.weight) == 1
    inputs = {"fc": torch.randn(4, 32), "conv": torch.randn(4, 3, 8, 8), "deconv": torch.randn(4, 8, 4, 4)}
    layers.train()
    for _ in range(20):  # one power iteration per training-mode forward
        for name, layer in layers.items():
            layer(inputs[name])
    for name in layers:
        assert sigma(name) == pytest.approx(1.0, abs=0.05), name


# ----- minibatch standard deviation -----


def test_minibatch_std_shapes() -> None:
    assert MinibatchStd(4)(torch.randn(8, 3, 5, 5)).shape == (8, 4, 5, 5)
    assert MinibatchStd(4)(torch.randn(6, 7)).shape == (6, 8)  # 6 is no multiple of 4: groups of 3
    assert MinibatchStd(4)(torch.randn(2, 7)).shape == (2, 8)  # fewer samples than group_size
    x = torch.randn(8, 3, 5, 5)
    out = MinibatchStd(4)(x)
    assert torch.equal(out[:, :3], x)  # the input channels pass through
    assert (out[:, 3] == out[:, 3, :1, :1]).all()  # one value per sample, constant over the image
    with pytest.raises(ValueError):
        MinibatchStd()(torch.randn(4, 2, 3))


def test_minibatch_std_value_by_hand() -> None:
    # Groups are strided: with G = 2 and M = N / G = 2, group 0 = samples {0, 2}, group 1 = samples {1, 3}.
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, 6.0], [0.0, 4.0]])
    # group 0: feature 0 (1, 3) biased std 1, feature 1 (2, 6) std 2 -> mean 1.5
    # group 1: feature 0 (0, 0) std sqrt(1e-8) = 1e-4, feature 1 (0, 4) std 2 -> mean 1.00005
    appended = MinibatchStd(group_size=2)(x)[:, 2]
    assert appended.tolist() == pytest.approx([1.5, 1.00005, 1.5, 1.00005], rel=1e-6)


def test_minibatch_std_falls_back_to_a_divisor_of_the_batch() -> None:
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    # group_size 4 does not divide 6; groups of 3 do: group m = samples {m, m + 2, m + 4}
    appended = MinibatchStd(group_size=4)(x)[:, 5]
    for m in range(2):
        group = x[m::2]
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert appended[m].item() == pytest.approx(expected.item(), rel=1e-6)
        assert appended[m + 2].item() == appended[m + 4].item() == appended[m].item()


def test_minibatch_std_of_a_constant_batch() -> None:
    out = MinibatchStd()(torch.full((8, 2, 3, 3), 0.7))
    assert torch.allclose(out[:, 2], torch.full((8, 3, 3), 1e-4))  # sqrt(0 + 1e-8)


# ----- DiffAugment -----


def test_diff_augment_keeps_shapes_and_gradients() -> None:
    torch.manual_seed(0)
    for policy in ([], ["color"], ["translation"], ["cutout"], list(POLICIES)):
        x = torch.randn(4, 3, 16, 16, requires_grad=True)
        out = diff_augment(x, policy)
        assert out.shape == x.shape
        out.square().sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_diff_augment_empty_policy_is_identity_and_unknown_names_fail() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert diff_augment(x, []) is x
    assert diff_augment(x, "") is x
    with pytest.raises(ValueError, match="color, translation, cutout"):
        diff_augment(x, ["colour"])


def test_diff_augment_policy_order_and_spelling_do_not_matter() -> None:
    x = torch.randn(4, 3, 8, 8)
    outs = []
    for policy in (
        ["color", "translation", "cutout"],
        ["cutout", "color", "translation"],
        "color,translation,cutout",
    ):
        torch.manual_seed(5)
        outs.append(diff_augment(x, policy))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_color_shifts_a_flat_image_by_its_brightness_only() -> None:
    # On an image with one value everywhere, saturation and contrast change nothing (x equals its means),
    # so the result is x plus one brightness offset per image, drawn from [-0.5, 0.5).
    torch.manual_seed(0)
    x = torch.full((32, 3, 4, 4), 0.2)
    offset = (diff_augment(x, ["color"]) - x).flatten(1)
    assert torch.allclose(offset, offset[:, :1].expand_as(offset), atol=1e-6)
    assert ((offset[:, 0] >= -0.5) & (offset[:, 0] < 0.5)).all()
    assert offset[:, 0].std() > 0.1  # differs between images


def test_translation_is_a_zero_filled_shift_of_at_most_an_eighth() -> None:
    torch.manual_seed(0)
    n, side = 32, 16
    x = torch.arange(1, side * side + 1, dtype=torch.float32).reshape(1, 1, side, side).repeat(n, 2, 1, 1)
    out = diff_augment(x, ["translation"])
    shifts = set()
    for i in range(n):
        matches = []
        for dy in range(-2, 3):  # 16 / 8 = 2 pixels at most
            for dx in range(-2, 3):
                expected = torch.zeros(2, side, side)
                rows, cols = (
                    slice(max(0, -dy), min(side, side - dy)),
                    slice(max(0, -dx), min(side, side - dx)),
                )
                src_rows = slice(rows.start + dy, rows.stop + dy)
                src_cols = slice(cols.start + dx, cols.stop + dx)
                expected[:, rows, cols] = x[i, :, src_rows, src_cols]
                if torch.equal(out[i], expected):
                    matches.append((dy, dx))
        assert len(matches) == 1, i
        shifts.add(matches[0])
    assert len(shifts) > 5  # drawn per image
    assert (out.sum(dim=(1, 2, 3)) <= x.sum(dim=(1, 2, 3))).all()


def test_cutout_zeros_one_square_of_half_the_side_clipped_at_the_border() -> None:
    torch.manual_seed(0)
    n, side, cut = 256, 8, 4
    out = diff_augment(torch.ones(n, 1, side, side), ["cutout"])
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    full_squares = 0
    for image in out[:, 0]:
        zero_rows = (image == 0).any(dim=1).nonzero().flatten()
        zero_cols = (image == 0).any(dim=0).nonzero().flatten()
        height, width = len(zero_rows), len(zero_cols)
        # The zeros form one height x width rectangle of contiguous rows and columns.
        assert int((image == 0).sum()) == height * width
        assert zero_rows.tolist() == list(range(int(zero_rows[0]), int(zero_rows[0]) + height))
        assert zero_cols.tolist() == list(range(int(zero_cols[0]), int(zero_cols[0]) + width))
        # Each side is the full cut, or at least half of it when it is clipped at an image border.
        for first, length in ((zero_rows[0], height), (zero_cols[0], width)):
            assert cut // 2 <= length <= cut
            if length < cut:
                assert first == 0 or first + length == side
        full_squares += height * width == cut * cut
    assert 0 < full_squares < n  # squares inside the image and clipped ones both occur

"""LAPGAN: the pyramid maths, the nets' levels, coarse-to-fine sampling, the per-level training losses, a
short real training, the photo-patches dataset, and the mistakes refused with the field named.

The shared checks of every net and recipe (shapes, one step, checkpoint round trip) are in test_components.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DataConfig, resolve
from ganforge.data import Batch, load_dataset
from ganforge.data.photos import NUM_PATCHES, photo_patches, write_patch_folder
from ganforge.engine import Trainer
from ganforge.errors import UserError
from ganforge.nets import NETS
from ganforge.nets.lapgan import (
    downsample,
    laplacian_pyramid,
    noise_shares,
    pyramid_sizes,
    reconstruct,
    upsample,
)
from ganforge.sampling import load_generator


def tiny(*extra: str) -> list[str]:
    """Return overrides for a few-step lapgan run on mnist5k with small nets."""
    return [
        "recipe.name=lapgan",
        "data.name=mnist5k",
        "nets.latent_dim=12",
        "nets.generator.options.width=8",
        "nets.discriminator.options.width=8",
        "training.batch_size=16",
        "training.steps=4",
        "training.threads=1",
        "logging.tensorboard=false",
        "logging.checkpoint_every=4",
        "logging.sample_every=4",
        "logging.grid_size=4",
        "monitors.enabled=false",
        *extra,
    ]


def generator(shape: tuple[int, ...] = (1, 28, 28), latent: int = 12) -> torch.nn.Module:
    torch.manual_seed(0)
    return NETS.get("lapgan_generator")(data_shape=shape, latent_dim=latent, width=8).eval()


# -- pyramid maths --------------------------------------------------------------------------------------


def test_pyramid_sizes_and_noise_split_follow_the_written_rules() -> None:
    assert pyramid_sizes(28, 3) == [7, 14, 28]
    assert pyramid_sizes(32, 3) == [8, 16, 32]
    assert pyramid_sizes(64, 3) == [16, 32, 64]  # capped by max_levels
    assert pyramid_sizes(64, 4) == [8, 16, 32, 64]
    assert pyramid_sizes(16, 3) == [8, 16]  # 4 would be below the smallest coarse side
    assert pyramid_sizes(28, 2) == [14, 28]
    assert noise_shares(100, 3) == [50, 25, 25]
    assert noise_shares(8, 3) == [4, 2, 2]
    assert noise_shares(3, 3) == [1, 1, 1]


def test_down_and_up_are_average_pooling_and_bilinear() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(downsample(x), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    flat = torch.full((2, 3, 5, 5), 0.25)
    assert torch.allclose(upsample(flat), torch.full((2, 3, 10, 10), 0.25))  # constants stay constant
    assert upsample(torch.randn(1, 1, 7, 7)).shape == (1, 1, 14, 14)


def test_the_bands_and_the_coarsest_level_rebuild_the_image_exactly() -> None:
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    pyramid = laplacian_pyramid(x, 3)
    assert pyramid.base.shape == (4, 3, 8, 8)
    assert [b.shape[-1] for b in pyramid.bands] == [16, 32]
    assert torch.allclose(pyramid.base, downsample(downsample(x)))
    images = reconstruct(pyramid.base, pyramid.bands)
    assert torch.allclose(images[-1], x, atol=1e-6)
    assert torch.allclose(images[1], downsample(x), atol=1e-6)
    # written out: the coarsest level, upsampled twice, plus each band upsampled to the top
    total = upsample(upsample(pyramid.base) + pyramid.bands[0]) + pyramid.bands[1]
    assert torch.allclose(total, x, atol=1e-6)


# -- nets -----------------------------------------------------------------------------------------------


def test_generator_levels_have_the_pyramid_sizes_and_the_output_is_in_range() -> None:
    net = generator()
    assert net.latent_dim == 12 and net.data_shape == (1, 28, 28) and net.sizes == [7, 14, 28]
    z = torch.randn(6, 12) * 5  # large noise: the unclamped final level leaves [-1, 1]
    levels = net.pyramid(z)
    assert [tuple(level.shape) for level in levels] == [(6, 1, 7, 7), (6, 1, 14, 14), (6, 1, 28, 28)]
    out = net(z)
    assert out.shape == (6, 1, 28, 28) and out.min() >= -1 and out.max() <= 1
    assert torch.equal(out, levels[-1].clamp(-1, 1))
    assert levels[0].abs().max() <= 1  # the coarsest level is a tanh output


def test_sampling_goes_coarse_to_fine_each_level_the_upsampled_one_below_plus_its_band() -> None:
    net = generator((3, 32, 32), latent=16)
    z = torch.randn(5, 16)
    levels = net.pyramid(z)
    shares = net.split_noise(z)
    assert [s.shape[1] for s in shares] == net.shares == [8, 4, 4]
    assert torch.allclose(levels[0], net.base(shares[0]))
    for k in (1, 2):
        up = upsample(levels[k - 1])
        assert torch.allclose(levels[k], up + net.band(k, up, shares[k]), atol=1e-6)
    # each level's noise share changes only its own level and the ones above
    changed = z.clone()
    changed[:, 8:12] += 1.0  # level 1's share
    again = net.pyramid(changed)
    assert torch.equal(again[0], levels[0]) and not torch.allclose(again[1], levels[1])


def test_eval_sampling_does_not_depend_on_the_batch() -> None:
    net = generator()
    z = torch.randn(8, 12)
    assert torch.allclose(net(z)[:3], net(z[:3]), atol=1e-6)


def test_discriminator_scores_each_level_and_sums_them_for_whole_images() -> None:
    torch.manual_seed(0)
    net = NETS.get("lapgan_discriminator")(data_shape=(1, 28, 28), width=8).eval()
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    inputs = net.level_inputs(laplacian_pyramid(x, 3))
    assert [tuple(i.shape) for i in inputs] == [(4, 1, 7, 7), (4, 2, 14, 14), (4, 2, 28, 28)]
    logits = [net.level_logits(k, part) for k, part in enumerate(inputs)]
    assert all(score.shape == (4,) for score in logits)
    assert torch.allclose(net(x), sum(logits))
    with pytest.raises(ValueError, match="expected shape"):
        net.level_logits(1, inputs[2])


def test_nets_refuse_shapes_the_pyramid_cannot_handle_in_one_line() -> None:
    for shape in ((1, 8, 8), (1, 27, 27), (2,)):
        with pytest.raises(UserError) as caught:
            NETS.get("lapgan_generator")(data_shape=shape, latent_dim=8)
        assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="latent_dim of at least 3"):
        NETS.get("lapgan_generator")(data_shape=(1, 28, 28), latent_dim=2)


# -- the recipe -----------------------------------------------------------------------------------------


def test_every_level_of_both_nets_gets_gradients_from_its_own_loss(tmp_path: Path) -> None:
    recipe = Trainer(resolve(overrides=tiny()), tmp_path).recipe
    batch = Batch(torch.rand(8, 1, 28, 28) * 2 - 1)
    d_loss, d_stats = recipe.discriminator_loss(batch)
    d_loss.backward()
    for level in recipe.nets["discriminator"].levels:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in level.parameters())
    assert all(p.grad is None for p in recipe.nets["generator"].parameters())  # D's phase leaves G alone
    assert set(d_stats) >= {"loss_D", "D(x)", "D(G(z))", "D(x)@0", "D(G(z))@2", "loss_D@1"}
    total = sum(d_stats[f"loss_D@{k}"] for k in range(3))
    assert d_stats["loss_D"].item() == pytest.approx(total.item(), rel=1e-5)
    assert d_stats["D(x)"].item() == pytest.approx(np.mean([d_stats[f"D(x)@{k}"].item() for k in range(3)]))

    recipe.zero_grad(set_to_none=True)
    g_loss, g_stats = recipe.generator_loss(batch)
    g_loss.backward()
    net = recipe.nets["generator"]
    for part in (net.base, *net.bands):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert g_stats["loss_G"].item() == pytest.approx(sum(g_stats[f"loss_G@{k}"].item() for k in range(3)))


def test_a_level_is_trained_on_the_real_pyramid_not_on_generated_coarse_images(tmp_path: Path) -> None:
    recipe = Trainer(resolve(overrides=tiny()), tmp_path).recipe
    real = laplacian_pyramid(torch.rand(4, 1, 28, 28) * 2 - 1, 3)
    z = torch.randn(4, 12)
    base, bands = recipe.fake_bands(real, z)
    shares = recipe.nets["generator"].split_noise(z)
    # level 2's band depends on the real upsampled image at its level, whatever G made below it
    expected = recipe.nets["generator"].band(2, real.upsampled[1], shares[2])
    assert torch.allclose(bands[1], expected)


@pytest.mark.parametrize("objective", ["wgan-gp", "relativistic", "hinge"])
def test_other_objectives_and_remedies_run_level_by_level(tmp_path: Path, objective: str) -> None:
    extra = [f"objective.name={objective}", "stability.r1=1.0", "stability.r1_every=2"]
    if objective == "hinge":
        extra += ["stability.lecam=0.1", "stability.spectral_norm=true", "stability.minibatch_std=4"]
    trainer = Trainer(resolve(overrides=tiny(*extra)), tmp_path)
    stats = {}
    for _ in range(2):
        stats.update(trainer.train_step(trainer.loader.next()))
    assert all(torch.isfinite(v) for v in stats.values())
    assert "r1" in stats
    if objective == "wgan-gp":
        assert {"critic(x)@0", "gradient_penalty"} <= set(stats)
    if objective == "hinge":
        assert "lecam" in stats and len(trainer.recipe.level_anchors) == 3


def test_a_short_training_learns_and_the_saved_generator_samples(tmp_path: Path) -> None:
    run = tmp_path / "run"
    steps = ["training.steps=40", "logging.checkpoint_every=40", "logging.sample_every=40"]
    fast = ["training.ema_decay=null", "optim.generator.lr=0.001", "optim.discriminator.lr=0.001"]
    trainer = Trainer(resolve(overrides=tiny(*steps, *fast)), run)
    target = laplacian_pyramid(trainer.data.x, 3).base.mean().item()  # MNIST is mostly black: about -0.64
    z = torch.randn(256, 12, generator=torch.Generator().manual_seed(1))
    net = trainer.recipe.nets["generator"].eval()
    with torch.no_grad():
        before = net.pyramid(z)
    net.train()
    trainer.fit()
    sampler = load_generator(run)
    assert type(sampler.net) is NETS.get("lapgan_generator")
    samples = sampler.sample(64, seed=1)
    assert samples.shape == (64, 1, 28, 28) and samples.min() >= -1 and samples.max() <= 1
    assert torch.equal(samples, sampler.sample(64, seed=1))
    with torch.no_grad():
        after = sampler.net.pyramid(z)
    # measurable after 40 steps: G_0's coarse digits take the data's dark background from the grey start,
    # and the bands built on them keep the full images dark
    assert abs(after[0].mean().item() - target) < 0.3 * abs(before[0].mean().item() - target)
    assert after[-1].clamp(-1, 1).mean().item() < target / 2


# -- mistakes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("stability.pac=2", "stability.pac"),
        ("stability.unrolled_steps=2", "stability.unrolled_steps"),
        ("stability.diffaugment=[translation]", "stability.diffaugment"),
        ("stability.freeze_d=1", "stability.freeze_d"),
        ("nets.generator.name=dcgan_generator", "nets.generator.name"),
    ],
)
def test_refused_settings_raise_one_line_naming_the_field(tmp_path: Path, override: str, field: str) -> None:
    with pytest.raises(UserError) as caught:
        Trainer(resolve(overrides=tiny(override)), tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{field}:") and "\n" not in message


def test_data_too_small_for_a_pyramid_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="lapgan nets need an even image side") as caught:
        Trainer(resolve(overrides=tiny("data.name=digits")), tmp_path)
    assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match=r"^data\.name: lapgan needs images"):
        Trainer(resolve(overrides=tiny("data.name=ring8")), tmp_path)


# -- photo patches --------------------------------------------------------------------------------------


def test_photo_patches_are_deterministic_colour_patches_in_range() -> None:
    data = load_dataset(DataConfig(name="photo-patches"))
    assert data.x.shape == (NUM_PATCHES, 3, 32, 32) and data.y is None
    assert data.info.kind == "images" and data.info.shape == (3, 32, 32)
    assert data.x.min() >= -1 and data.x.max() <= 1
    assert data.x.std() > 0.2  # photos, not flat colour
    assert not torch.allclose(data.x[:, 0], data.x[:, 2])  # colour: the channels differ
    again = load_dataset(DataConfig(name="photo-patches"))
    assert torch.equal(data.x, again.x)
    other = load_dataset(DataConfig(name="photo-patches", seed=1))
    assert not torch.equal(data.x[:10], other.x[:10])
    assert np.array_equal(photo_patches(7, 0), photo_patches(20, 0)[:7])  # a prefix, whatever the count


def test_patch_folder_reads_back_as_the_same_patches(tmp_path: Path) -> None:
    folder = write_patch_folder(tmp_path / "patches", 12, seed=3)
    files = sorted(folder.glob("*.png"))
    assert len(files) == 12
    with Image.open(files[0]) as image:
        assert image.size == (32, 32) and image.mode == "RGB"
    data = load_dataset(DataConfig(name=f"folder:{folder}"))
    expected = torch.from_numpy(photo_patches(12, 3).astype(np.float32) / 127.5 - 1)
    assert torch.allclose(data.x, expected, atol=1e-6)

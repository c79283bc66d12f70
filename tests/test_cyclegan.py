"""CycleGAN: the ResNet generator, the cycle loss, the image pool (rate, fill, checkpoints), unpaired data
(folders and mnist5k-restyle), a short real training, and `ganforge translate --direction BtoA`.

The shared checks of every net and recipe (shapes, one step, checkpoint round trip) are in test_components.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import translation
from ganforge.cli import main
from ganforge.config import DataConfig, resolve
from ganforge.data import load_dataset
from ganforge.data.paired import restyle_domains, split_pairs
from ganforge.engine import Trainer
from ganforge.errors import UserError
from ganforge.nets import NETS, translates
from ganforge.recipes import cyclegan
from ganforge.recipes.cyclegan import ImagePool, cycle_loss
from ganforge.translation import load_translator


def tiny(*extra: str) -> list[str]:
    """Return overrides for a few-step cyclegan run on mnist5k-restyle with small nets."""
    return [
        "recipe.name=cyclegan",
        "objective.name=lsgan",
        "data.name=mnist5k-restyle",
        "nets.generator.options.width=8",
        "nets.generator.options.blocks=1",
        "nets.discriminator.options.width=8",
        "training.batch_size=16",
        "training.steps=2",
        "training.threads=1",
        "training.ema_decay=null",
        "logging.tensorboard=false",
        "logging.checkpoint_every=2",
        "logging.sample_every=2",
        "logging.grid_size=4",
        "monitors.enabled=false",
        *extra,
    ]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("cyclegan") / "run"
    Trainer(resolve(overrides=tiny()), run).fit()
    return run


def write_images(folder: Path, count: int, side: int = 16, colour: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    for i in range(count):
        shape = (side, side, 3) if colour else (side, side)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"img{i}.png")


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, check it exits 2 with one line on stderr, and return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


# -- net and loss ---------------------------------------------------------------------------------------


def test_generator_maps_sources_to_images_of_its_shape() -> None:
    net = NETS.get("cyclegan_generator")(data_shape=(3, 32, 32), source_channels=1, width=8, blocks=2)
    assert translates(net) and net.source_shape == (1, 32, 32)
    out = net(torch.randn(4, 1, 32, 32))
    assert out.shape == (4, 3, 32, 32) and out.abs().max() <= 1
    with pytest.raises(UserError, match="divides by 4"):
        NETS.get("cyclegan_generator")(data_shape=(1, 30, 30))


def test_cycle_loss_is_zero_for_identity_generators_and_l1_otherwise() -> None:
    a, b = torch.rand(2, 1, 4, 4), torch.rand(2, 3, 4, 4)
    identity = torch.nn.Identity()
    assert cycle_loss(a, identity(identity(a)), b, identity(identity(b))).item() == 0.0
    shifted = cycle_loss(a, a + 0.25, b, b - 0.5)
    assert shifted.item() == pytest.approx(0.75)


# -- image pool -----------------------------------------------------------------------------------------


def test_pool_returns_new_images_unchanged_while_it_fills() -> None:
    pool = ImagePool(5, (1, 2, 2))
    first, second = torch.rand(3, 1, 2, 2), torch.rand(2, 1, 2, 2)
    assert torch.equal(pool.query(first), first) and torch.equal(pool.query(second), second)
    assert int(pool.filled) == 5 and torch.equal(pool.images, torch.cat([first, second]))
    assert torch.equal(ImagePool(0, (1, 2, 2)).query(first), first)


def test_full_pool_returns_past_images_at_half_the_rate() -> None:
    pool, generator = ImagePool(50, (1, 1, 1)), torch.Generator().manual_seed(0)
    pool.query(-torch.arange(1.0, 51.0).view(50, 1, 1, 1), generator)  # past images: negative values
    fresh = torch.arange(1.0, 4001.0).view(4000, 1, 1, 1)  # new images: positive, all different
    returned = torch.cat([pool.query(part, generator) for part in fresh.split(16)]).flatten()
    from_past = returned != fresh.flatten()
    assert 0.46 < from_past.float().mean().item() < 0.54  # 1/2, within ~5 standard errors (0.008)
    # what comes back from the pool was stored there before: an old image or an earlier new one
    assert all(value <= position + 1 for position, value in enumerate(returned.tolist()))
    assert set(pool.images.flatten().tolist()) <= set(range(-50, 4001))


def test_pool_survives_a_checkpoint_round_trip(tiny_run: Path) -> None:
    trainer = Trainer.resume(tiny_run)
    pools = trainer.recipe.pool_b, trainer.recipe.pool_a
    assert all(int(pool.filled) == 32 for pool in pools)  # 2 steps of 16 fakes per domain
    assert trainer.recipe.pool_b.images[:32].abs().sum() > 0
    twin = Trainer(resolve(overrides=tiny()), tiny_run.parent / "twin")
    assert int(twin.recipe.pool_b.filled) == 0
    twin.load_state_dict(trainer.state_dict())
    for mine, theirs in zip(pools, (twin.recipe.pool_b, twin.recipe.pool_a), strict=True):
        assert torch.equal(mine.images, theirs.images) and int(mine.filled) == int(theirs.filled)


# -- data -----------------------------------------------------------------------------------------------


def test_unpaired_folders_read_unequal_counts_and_refuse_an_empty_side(tmp_path: Path) -> None:
    write_images(tmp_path / "ok" / "A", 3)
    write_images(tmp_path / "ok" / "B", 7, colour=True)
    data = load_dataset(DataConfig(name=f"unpaired:{tmp_path / 'ok'}"))
    assert data.x.shape == (7, 4, 16, 16) and data.info.pair_channels == (1, 3) and data.info.unpaired
    side_a, side_b = split_pairs(data.x, data.info.pair_channels)
    assert len(torch.unique(side_b, dim=0)) == 7 and len(torch.unique(side_a, dim=0)) == 3  # all used
    again = load_dataset(DataConfig(name=f"unpaired:{tmp_path / 'ok'}"))
    assert torch.equal(again.x, data.x)  # the random match is seeded
    write_images(tmp_path / "empty" / "A", 2)
    (tmp_path / "empty" / "B").mkdir()
    with pytest.raises(UserError, match="B'? is missing or holds no images") as error:
        load_dataset(DataConfig(name=f"unpaired:{tmp_path / 'empty'}"))
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(DataConfig(name=f"unpaired:{tmp_path / 'nowhere'}"))


def test_mnist5k_restyle_has_different_digits_in_each_domain_and_a_test_split() -> None:
    data = load_dataset(DataConfig(name="mnist5k-restyle"))
    assert data.x.shape == (2250, 2, 32, 32) and data.info.unpaired and data.info.num_classes == 10
    side_a, side_b = split_pairs(data.x, (1, 1))
    assert side_a.mean() < -0.5 < 0.5 < side_b.mean()  # A white on black, B dark on white
    train_a, _, train_b, _ = restyle_domains("train")
    test_a, _, test_b, test_labels_b = restyle_domains("test")
    assert len(test_a) == len(test_b) == len(test_labels_b) == 250
    undone = -train_b  # B's digits before inversion are dilated, so never equal to an A digit
    assert not (train_a[:, None] == undone[None, :50]).flatten(2).all(2).any()
    assert not (test_a[:, None] == train_a[None, :200]).flatten(2).all(2).any()


def test_pix2pix_refuses_unpaired_data_in_one_line(tmp_path: Path) -> None:
    overrides = ["recipe.name=pix2pix", "data.name=mnist5k-restyle", "training.threads=1"]
    with pytest.raises(UserError, match="data.name: pix2pix needs paired images.*unpaired") as error:
        Trainer(resolve(overrides=overrides), tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("stability.pac=2", "stability.pac"),
        ("stability.lecam=0.1", "stability.lecam"),
        ("stability.r1=1", "stability.r1"),
        ("data.name=digits", "data.name"),
        ("nets.generator.name=unet_generator", "nets.generator.name"),
    ],
)
def test_refused_settings_raise_one_line_naming_the_field(tmp_path: Path, override: str, field: str) -> None:
    with pytest.raises(UserError, match=field) as error:
        Trainer(resolve(overrides=tiny(override)), tmp_path)
    assert "\n" not in str(error.value)


# -- training and use -----------------------------------------------------------------------------------


def test_the_sample_grid_shows_both_directions_and_both_generators_are_saved(tiny_run: Path) -> None:
    with Image.open(tiny_run / "samples" / "step_00000002.png") as grid:
        assert grid.height > grid.width / 2  # four rows of four images
    assert cyclegan.REVERSE_GENERATOR_FILE == translation.REVERSE_GENERATOR_FILE
    forward, backward = load_translator(tiny_run), load_translator(tiny_run, direction="BtoA")
    assert forward.sampler.net is not backward.sampler.net
    recipe = Trainer.resume(tiny_run).recipe
    for key, value in recipe.nets["generator_ba"].state_dict().items():
        assert torch.equal(value, backward.sampler.net.state_dict()[key])


@pytest.mark.slow
def test_a_short_training_lowers_the_cycle_loss(tmp_path: Path) -> None:
    overrides = tiny(
        "training.steps=60",
        "training.precision=fp32",
        "logging.log_every=1",
        "logging.checkpoint_every=60",
        "logging.sample_every=60",
        "data.seed=3",
        "training.seed=3",
    )
    trainer = Trainer(resolve(overrides=overrides), tmp_path)
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    cycle = [row["cycle"] for row in rows if "cycle" in row]
    assert len(cycle) == 60
    assert np.mean(cycle[-10:]) < 0.5 * np.mean(cycle[:5])


def test_translate_both_directions_for_cyclegan_and_only_atob_for_pix2pix(
    tiny_run: Path, tmp_path: Path, capsys
) -> None:
    test_a, _, test_b, _ = restyle_domains("test")
    for folder, images in (("in_a", test_a[:2]), ("in_b", test_b[:3])):
        (tmp_path / folder).mkdir()
        for i, image in enumerate(((images[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()):
            Image.fromarray(image).save(tmp_path / folder / f"{i}.png")
    run = str(tiny_run)
    assert (
        main(["translate", run, str(tmp_path / "in_b"), str(tmp_path / "out_a"), "--direction", "BtoA"]) == 0
    )
    assert (
        main(["translate", run, str(tmp_path / "in_a"), str(tmp_path / "out_b"), "--direction", "AtoB"]) == 0
    )
    assert len(list((tmp_path / "out_a").iterdir())) == 3 and len(list((tmp_path / "out_b").iterdir())) == 2
    capsys.readouterr()
    bad = ["translate", run, str(tmp_path / "in_a"), str(tmp_path / "x"), "--direction", "AtoA"]
    assert "--direction" in one_line_error(bad, capsys)
    pix2pix = tmp_path / "pix2pix"
    pix2pix_overrides = [
        "recipe.name=pix2pix",
        "data.name=edges-mnist5k",
        "nets.generator.options.width=8",
        "nets.discriminator.options.width=8",
        "training.batch_size=16",
        "training.steps=1",
        "training.threads=1",
        "training.ema_decay=null",
        "logging.tensorboard=false",
        "logging.checkpoint_every=1",
        "logging.sample_every=1",
        "monitors.enabled=false",
    ]
    Trainer(resolve(overrides=pix2pix_overrides), pix2pix).fit()
    refused = ["translate", str(pix2pix), str(tmp_path / "in_a"), str(tmp_path / "y"), "--direction", "BtoA"]
    assert "BtoA needs a run that learns both directions" in one_line_error(refused, capsys)
    assert not (tmp_path / "y").exists()

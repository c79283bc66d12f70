"""pix2pix: the U-Net and PatchGAN nets, paired data (folders and edges-mnist5k), the generator loss, a short
real training, and `ganforge translate` with its refusals.

The shared checks of every net and recipe (shapes, one step, checkpoint round trip) are in test_components.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.config import DataConfig, resolve
from ganforge.data import Batch, BatchLoader, load_dataset
from ganforge.data.paired import split_pairs
from ganforge.engine import Trainer
from ganforge.errors import UserError
from ganforge.nets import NETS
from ganforge.recipes.pix2pix import translation_loss
from ganforge.translation import load_translator, translate_folder


def tiny(*extra: str) -> list[str]:
    """Return overrides for a few-step pix2pix run on edges-mnist5k with small nets."""
    return [
        "recipe.name=pix2pix",
        "data.name=edges-mnist5k",
        "nets.generator.options.width=8",
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
    run = tmp_path_factory.mktemp("pix2pix") / "run"
    Trainer(resolve(overrides=tiny()), run).fit()
    return run


def write_images(folder: Path, names: list[str], pixels: list[np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(names, pixels, strict=True):
        Image.fromarray(array).save(folder / name)


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, check it exits 2 with one line on stderr, and return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


# -- nets -----------------------------------------------------------------------------------------------


def test_unet_maps_sources_to_targets_of_its_shape_with_depth_from_the_side() -> None:
    net = NETS.get("unet_generator")(data_shape=(3, 32, 32), source_channels=1, width=8)
    assert net.source_shape == (1, 32, 32) and net.depth == 5  # 32 halves down to 1x1
    out = net(torch.randn(4, 1, 32, 32) * 3)
    assert out.shape == (4, 3, 32, 32) and out.abs().max() <= 1
    assert NETS.get("unet_generator")(data_shape=(1, 28, 28), width=8).depth == 2  # 28 -> 14 -> 7
    with pytest.raises(ValueError, match="expected shape"):
        net(torch.randn(4, 3, 32, 32))  # the target's channels, not the source's
    with pytest.raises(UserError, match="divisible by 4"):
        NETS.get("unet_generator")(data_shape=(1, 30, 30))
    dropouts = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 3 and all(m.p == 0.5 for m in dropouts)  # the three innermost decoder layers


def test_unet_skip_connections_carry_the_image_past_the_bottleneck() -> None:
    torch.manual_seed(0)
    net = NETS.get("unet_generator")(data_shape=(1, 32, 32), width=8).eval()
    # each decoder layer but the innermost takes its input concatenated with the encoder's at that side
    assert net.decoder[-1][1].in_channels == 2 * net.encoder[0][-1].out_channels
    net.encoder[-1].register_forward_hook(lambda module, inputs, output: torch.zeros_like(output))
    a, b = torch.randn(2, 1, 1, 32, 32).unbind()
    with torch.no_grad():
        assert not torch.allclose(net(a), net(b))  # with the 1x1 bottleneck cut, the skips still differ
    net.decoder[-1][1].weight.data[8:].zero_()  # cut the outermost skip as well: only deeper ones remain
    with torch.no_grad():
        changed = a.clone()
        changed[..., 0, 0] += 5.0  # one pixel: seen through the outermost skip only at its own place
        assert (net(changed) - net(a)).abs().sum() > 0


def test_patchgan_returns_one_logit_per_patch() -> None:
    net = NETS.get("patchgan_discriminator")(data_shape=(2, 32, 32), width=8)
    assert net.patch_grid == 6 and net(torch.randn(3, 2, 32, 32)).shape == (3, 36)
    paper = NETS.get("patchgan_discriminator")(data_shape=(6, 256, 256), width=4)
    assert paper.patch_grid == 30  # the paper's 70x70 PatchGAN on 256x256 pairs
    with pytest.raises(ValueError, match="expected shape"):
        net(torch.randn(3, 1, 32, 32))


# -- paired data ----------------------------------------------------------------------------------------


def test_paired_folders_keep_pairs_aligned_through_shuffling_and_mirroring(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sources = [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(8)]
    names = [f"{i}.png" for i in range(8)]
    write_images(tmp_path / "pairs" / "A", names, sources)
    write_images(tmp_path / "pairs" / "B", names[::-1], [255 - s for s in sources[::-1]])
    data = load_dataset(DataConfig(name=f"paired:{tmp_path / 'pairs'}"))
    assert data.x.shape == (8, 2, 16, 16) and data.info.pair_channels == (1, 1) and data.y is None
    source, target = split_pairs(data.x, (1, 1))
    assert torch.allclose(target, -source, atol=1e-6)  # B is A inverted, file by file
    loader = BatchLoader(data, 8, seed=1, device=torch.device("cpu"), augment=["hflip"])
    mirrored = 0
    for _ in range(3):  # a pair is one sample: it is shuffled and mirrored as a whole
        source, target = split_pairs(loader.next().x, (1, 1))
        assert torch.allclose(target, -source, atol=1e-6)
        mirrored += sum(not any(torch.equal(s, x) for x in data.x[:, 0]) for s in source[:, 0])
    assert mirrored > 0


def test_paired_folders_refuse_unmatched_names_and_empty_sides_in_one_line(tmp_path: Path) -> None:
    grey = np.zeros((8, 8), dtype=np.uint8)
    write_images(tmp_path / "p" / "A", ["a.png", "b.png"], [grey, grey])
    write_images(tmp_path / "p" / "B", ["a.png", "c.png"], [grey, grey])
    with pytest.raises(UserError) as caught:
        load_dataset(DataConfig(name=f"paired:{tmp_path / 'p'}"))
    message = str(caught.value)
    assert "A/b.png" in message and "pix2pix needs paired folders" in message and "\n" not in message
    (tmp_path / "q" / "A").mkdir(parents=True)
    write_images(tmp_path / "q" / "B", ["a.png"], [grey])
    with pytest.raises(UserError, match=r"q/A' is missing or holds no images") as caught:
        load_dataset(DataConfig(name=f"paired:{tmp_path / 'q'}"))
    assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(DataConfig(name=f"paired:{tmp_path / 'none'}"))


def test_edges_mnist5k_pairs_edge_maps_with_padded_labelled_digits() -> None:
    data = load_dataset(DataConfig(name="edges-mnist5k"))
    assert data.x.shape == (5000, 2, 32, 32) and data.info.pair_channels == (1, 1)
    assert data.info.num_classes == 10 and data.y is not None
    edges, digits = split_pairs(data.x, (1, 1))
    assert set(edges.unique().tolist()) == {-1.0, 1.0}
    assert (digits[..., :2, :] == -1).all() and (digits[..., :, -2:] == -1).all()  # the 2-pixel padding
    ink = digits > 0
    assert 0.05 < (edges > 0).float().mean() < 0.4 and 0.05 < ink.float().mean() < 0.3


# -- the recipe -----------------------------------------------------------------------------------------


def test_generator_loss_is_adversarial_plus_weighted_l1(tmp_path: Path) -> None:
    total, l1 = translation_loss(
        torch.tensor(0.5), torch.full((2, 1, 4, 4), 0.2), torch.zeros(2, 1, 4, 4), 100
    )
    assert l1.item() == pytest.approx(0.2) and total.item() == pytest.approx(0.5 + 100 * 0.2)

    recipe = Trainer(resolve(overrides=tiny("recipe.options.l1_weight=7")), tmp_path).recipe
    batch = Batch(torch.rand(4, 2, 32, 32) * 2 - 1)
    torch.manual_seed(3)  # the same dropout masks below
    loss, stats = recipe.generator_loss(batch)
    torch.manual_seed(3)
    translated = recipe.nets["generator"](batch.x[:, :1])
    logits = recipe.nets["discriminator"](torch.cat([batch.x[:, :1], translated], dim=1))
    adversarial = torch.nn.functional.softplus(-logits).mean()  # non-saturating, over every patch
    expected = adversarial + 7 * (translated - batch.x[:, 1:]).abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(stats) == {"loss_G", "loss_G_adv", "l1"}


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("stability.pac=2", "stability.pac"),
        ("stability.minibatch_std=4", "stability.minibatch_std"),
        ("stability.unrolled_steps=2", "stability.unrolled_steps"),
        ("stability.diffaugment=[translation]", "stability.diffaugment"),
        ("data.name=mnist5k", "data.name"),
        ("nets.generator.name=dcgan_generator", "nets.generator.name"),
    ],
)
def test_refused_settings_raise_one_line_naming_the_field(tmp_path: Path, override: str, field: str) -> None:
    with pytest.raises(UserError) as caught:
        Trainer(resolve(overrides=tiny(override)), tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{field}:") and "\n" not in message


def test_the_sample_grid_shows_source_translation_and_target(tiny_run: Path) -> None:
    with Image.open(tiny_run / "samples" / "step_00000002.png") as grid:
        # 3 rows (source, translation, target) of 4 pairs (logging.grid_size), 32 px cells, 2 px padding
        assert grid.size == (4 * 34 + 2, 3 * 34 + 2)


@pytest.mark.slow
def test_a_short_training_brings_translations_closer_to_the_targets(tmp_path: Path) -> None:
    steps = ["training.steps=150", "logging.checkpoint_every=150", "logging.sample_every=150"]
    trainer = Trainer(resolve(overrides=tiny(*steps, "optim.generator.lr=0.001")), tmp_path / "run")
    source, target = split_pairs(trainer.data.x[:256], (1, 1))
    net = trainer.recipe.nets["generator"]

    def l1() -> float:
        net.eval()
        with torch.no_grad():
            distance = (net(source) - target).abs().mean().item()
        net.train()
        return distance

    before = l1()
    trainer.fit()
    after = l1()
    assert after < 0.6 * before
    translated = load_translator(tmp_path / "run").translate(source)
    assert (translated - target).abs().mean().item() == pytest.approx(after, abs=1e-5)


# -- translate ------------------------------------------------------------------------------------------


def test_translate_writes_one_png_per_input(tiny_run: Path, tmp_path: Path, capsys) -> None:
    data = load_dataset(DataConfig(name="edges-mnist5k"))
    edges = ((data.x[:3, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
    write_images(tmp_path / "in", ["a.png", "b.png", "c.jpg"], list(edges))
    assert main(["translate", str(tiny_run), str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    assert "wrote 3 translated images" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    with Image.open(tmp_path / "out" / "a.png") as image:
        assert image.size == (32, 32) and image.mode == "L"
    written = translate_folder(tiny_run, tmp_path / "in", tmp_path / "again")
    assert [p.name for p in written] == ["a.png", "b.png", "c.png"]


def test_translate_refuses_bad_input_in_one_line(tiny_run: Path, tmp_path: Path, capsys) -> None:
    good, out = tmp_path / "in", str(tmp_path / "out")
    write_images(good, ["a.png"], [np.zeros((32, 32), dtype=np.uint8)])
    (tmp_path / "empty").mkdir()
    write_images(tmp_path / "small", ["a.png"], [np.zeros((28, 28), dtype=np.uint8)])
    write_images(tmp_path / "colour", ["a.png"], [np.zeros((32, 32, 3), dtype=np.uint8)])
    run = str(tiny_run)
    assert "no generator" in one_line_error(["translate", str(tmp_path), str(good), out], capsys)
    assert "holds no images" in one_line_error(["translate", run, str(tmp_path / "empty"), out], capsys)
    assert "--direction" in one_line_error(["translate", run, str(good), out, "--direction", "BtoA"], capsys)
    assert "28x28" in one_line_error(["translate", run, str(tmp_path / "small"), out], capsys)
    assert "colour" in one_line_error(["translate", run, str(tmp_path / "colour"), out], capsys)
    assert not (tmp_path / "out").exists()  # nothing written when an input is refused

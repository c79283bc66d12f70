"""Super-resolution: sub-pixel shapes, PSNR/SSIM on known values, tiled = whole inference, the two SRGAN
stages, the content losses, patch data, a short real SRResNet training against bicubic, and
`ganforge superres` with its bad inputs.

The shared checks of every net and recipe (shapes, one step, checkpoint round trip) are in test_components.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from ganforge.cli import main
from ganforge.config import DataConfig, resolve
from ganforge.data import DataInfo, load_dataset
from ganforge.data.superres import HELDOUT_PHOTOS, NUM_PATCHES, TRAIN_PHOTOS, heldout_photos
from ganforge.engine import Trainer
from ganforge.errors import UserError
from ganforge.metrics.extractors.inception import default_path
from ganforge.metrics.superres import luma, psnr, ssim, to_levels
from ganforge.nets.srresnet import SRGANDiscriminator, SRResNetGenerator, bicubic_downscale, bicubic_upscale
from ganforge.sampling import Sampler
from ganforge.superres import SuperResolver, held_out_scores, load_superresolver


def tiny(*extra: str) -> list[str]:
    """Return overrides for a few-step srgan run on 32x32 sr-photos patches with small nets."""
    return [
        "recipe.name=srgan",
        "data.name=sr-photos",
        "data.image_size=32",
        "nets.generator.options.width=8",
        "nets.generator.options.blocks=1",
        "nets.discriminator.options.width=8",
        "training.batch_size=8",
        "training.steps=2",
        "training.threads=1",
        "training.ema_decay=null",
        "logging.tensorboard=false",
        *extra,
    ]


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


# -- nets -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_sub_pixel_upsampling_shapes(scale: int) -> None:
    net = SRResNetGenerator(data_shape=(3, 8 * scale, 8 * scale), scale=scale, width=8, blocks=1)
    assert net.source_shape == (3, 8, 8)
    assert len([m for m in net.upsample if isinstance(m, torch.nn.PixelShuffle)]) == int(math.log2(scale))
    out = net(torch.randn(2, 3, 5, 7))  # any size, not only the training patch's
    assert out.shape == (2, 3, 5 * scale, 7 * scale)
    assert out.abs().max() <= 1  # tanh


def test_bicubic_skip_starts_from_bicubic() -> None:
    net = SRResNetGenerator(data_shape=(1, 16, 16), scale=4, width=8, blocks=1, bicubic_skip=True)
    torch.nn.init.zeros_(net.tail.weight), torch.nn.init.zeros_(net.tail.bias)  # no detail learnt yet
    small = torch.rand(2, 1, 4, 6) * 2 - 1
    assert torch.allclose(net(small), bicubic_upscale(small, 4))


def test_bad_scale_and_patch_sizes_are_refused() -> None:
    with pytest.raises(UserError, match="scale must be one of"):
        SRResNetGenerator(data_shape=(3, 24, 24), scale=3)
    with pytest.raises(UserError, match="divisible by the scale 4"):
        SRResNetGenerator(data_shape=(3, 30, 30), scale=4)
    with pytest.raises(UserError, match="divides by 16"):
        SRGANDiscriminator(data_shape=(3, 40, 40))


def test_discriminator_features_and_logits() -> None:
    net = SRGANDiscriminator(data_shape=(3, 32, 32), width=4)
    maps = net.features(torch.randn(3, 3, 32, 32))
    assert [m.shape[-1] for m in maps] == [32, 16, 16, 8, 8, 4, 4, 2]
    assert net(torch.randn(3, 3, 32, 32)).shape == (3,)


# -- PSNR and SSIM ----------------------------------------------------------------------------------------


def levels_to_unit(levels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(levels.astype(np.float32)) / 127.5 - 1


def test_psnr_of_a_constant_offset() -> None:
    base = np.full((1, 3, 16, 16), 100, dtype=np.uint8)
    a, b = levels_to_unit(base), levels_to_unit(base + 5)
    assert psnr(a, b, "rgb").item() == pytest.approx(10 * math.log10(255**2 / 25))
    # On Y, 5 levels on each of R, G, B move the luma by 5 * 219 / 255.
    assert psnr(a, b, "y").item() == pytest.approx(10 * math.log10(255**2 / (5 * 219 / 255) ** 2))
    assert psnr(a, a, "y").item() == math.inf


def test_luma_of_black_white_and_grey() -> None:
    black, white = torch.zeros(1, 3, 1, 1), torch.full((1, 3, 1, 1), 255.0)
    assert luma(black).item() == pytest.approx(16) and luma(white).item() == pytest.approx(235)
    assert torch.equal(luma(torch.full((1, 1, 1, 1), 255.0)), luma(white))


def test_border_is_cut_before_scoring() -> None:
    a = torch.zeros(1, 1, 20, 20)
    b = a.clone()
    b[..., :2, :] = 1  # differs only in the top two rows
    assert psnr(a, b, "y", border=2).item() == math.inf
    assert psnr(a, b, "y", border=1).item() < 30


@pytest.mark.parametrize("channel", ["y", "rgb"])
def test_ssim_matches_scikit_image(channel: str) -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 40, 48, generator=generator) * 2 - 1
    b = (a + 0.2 * torch.randn(a.shape, generator=generator)).clamp(-1, 1)
    ours = ssim(a, b, channel)
    la, lb = to_levels(a), to_levels(b)
    if channel == "y":
        la, lb = luma(la), luma(lb)
    expected = [
        structural_similarity(
            la[i].numpy(),
            lb[i].numpy(),
            channel_axis=0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        for i in range(2)
    ]
    assert ours.tolist() == pytest.approx(expected, abs=1e-6)
    assert ssim(a, a, channel).tolist() == pytest.approx([1.0, 1.0])


# -- tiled inference ----------------------------------------------------------------------------------


def resolver_of(net: SRResNetGenerator) -> SuperResolver:
    return SuperResolver(Sampler(net, DataInfo("patches", "images", net.data_shape, None)))


def trained_like(net: SRResNetGenerator) -> SRResNetGenerator:
    """Give batch norm non-trivial running statistics, as a trained net has."""
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, net.source_shape[0], 12, 12))
    return net.eval()


@pytest.mark.parametrize(("bicubic_skip", "batch_norm"), [(False, True), (True, False)])
def test_tiled_upscaling_equals_whole_image(bicubic_skip: bool, batch_norm: bool) -> None:
    torch.manual_seed(0)
    options = {"width": 8, "blocks": 2, "bicubic_skip": bicubic_skip, "batch_norm": batch_norm}
    net = trained_like(SRResNetGenerator((3, 16, 16), scale=4, **options))
    resolver = resolver_of(net)
    image = torch.rand(1, 3, 37, 29) * 2 - 1
    whole = resolver.upscale(image, tile=None)
    tiled = resolver.upscale(image, tile=8)
    assert tiled.shape == whole.shape == (1, 3, 148, 116)
    assert torch.allclose(tiled, whole, atol=1e-5)
    net.context = 1  # too little overlap: the tiles' edges show
    assert not torch.allclose(resolver.upscale(image, tile=8), whole, atol=1e-3)


# -- recipe -------------------------------------------------------------------------------------------


def test_discriminator_waits_for_the_pretraining(tmp_path) -> None:
    trainer = Trainer(resolve(overrides=tiny("recipe.options.pretrain_steps=2")), tmp_path)
    assert {p.name: p.start for p in trainer.recipe.phases} == {"D": 2, "G": 0}
    discriminator = trainer.recipe.nets["discriminator"]
    for step in range(3):
        before = snapshot(discriminator)
        trainer.step = step
        stats = trainer.train_step(trainer.loader.next())
        changed = any(not torch.equal(v, before[k]) for k, v in discriminator.state_dict().items())
        assert changed == (step >= 2)
        if step < 2:  # stage 1: pure pixel MSE
            assert "loss_D" not in stats and torch.equal(stats["loss_G"], stats["mse"])
        else:
            assert "loss_D" in stats and "loss_G_adv" in stats


CONTENTS = ["discriminator", "mse"] + (["inception"] if default_path() is not None else [])


@pytest.mark.parametrize("content", CONTENTS)
def test_content_losses(content: str, tmp_path) -> None:
    overrides = tiny("recipe.options.pretrain_steps=0", f"recipe.options.content={content}")
    trainer = Trainer(resolve(overrides=overrides), tmp_path)
    stats = trainer.train_step(trainer.loader.next())
    assert torch.isfinite(stats["loss_G"])
    if content == "mse":
        assert "content" not in stats
    else:
        assert 0 < stats["content"] < 10


def test_inception_content_is_not_saved(tmp_path) -> None:
    if default_path() is None:
        pytest.skip("the Inception-v3 file is not installed")
    overrides = tiny("recipe.options.pretrain_steps=0", "recipe.options.content=inception")
    trainer = Trainer(resolve(overrides=overrides), tmp_path)
    assert trainer.recipe.content == "inception"
    assert all(key.startswith("nets.") for key in trainer.recipe.state_dict())  # no Inception weights


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("recipe.options.content=vgg", "recipe.options.content: must be one of"),
        ("recipe.options.scale=3", "scale must be one of"),
        ("recipe.options.pretrain_steps=-1", "recipe.options.pretrain_steps"),
        ("data.name=edges-mnist5k", "data.name: srgan trains on single"),
        ("nets.generator.name=unet_generator", "nets.generator.name: srgan needs"),
        ("stability.pac=2", "stability.pac"),
        ("nets.generator.options.scale=2", "scale is set by the run"),
    ],
)
def test_bad_settings_are_one_line(override: str, match: str, tmp_path) -> None:
    with pytest.raises(UserError, match=match):
        Trainer(resolve(overrides=tiny(override)), tmp_path)


# -- data ---------------------------------------------------------------------------------------------


def test_sr_photos_patches_and_held_out_photos() -> None:
    data = load_dataset(DataConfig(name="sr-photos", image_size=32))
    assert data.x.shape == (NUM_PATCHES, 3, 32, 32) and data.y is None
    assert -1 <= data.x.min() and data.x.max() <= 1
    assert not set(HELDOUT_PHOTOS) & set(TRAIN_PHOTOS)
    photos = heldout_photos()
    assert len(photos) == 3 and all(p.shape[0] == 3 and min(p.shape[1:]) >= 300 for p in photos)


def test_patch_folder(tmp_path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(tmp_path / "b.png")  # grey
    data = load_dataset(DataConfig(name=f"patches:{tmp_path}", image_size=32))
    assert data.x.shape == (NUM_PATCHES, 3, 32, 32)
    with pytest.raises(UserError, match="data.image_size: b.png is 40x40, smaller than the 48-pixel"):
        load_dataset(DataConfig(name=f"patches:{tmp_path}", image_size=48))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="holds no images"):
        load_dataset(DataConfig(name=f"patches:{empty}"))


# -- a short real training, and the command -------------------------------------------------------------


@pytest.fixture(scope="module")
def srresnet_run(tmp_path_factory):
    """A 300-step SRResNet (MSE only) at x4 on 32x32 patches, width 16, 2 blocks, bicubic skip (10 s)."""
    folder = tmp_path_factory.mktemp("srresnet")
    overrides = tiny(
        "recipe.options.pretrain_steps=300",
        "training.steps=300",
        "training.batch_size=16",
        "nets.generator.options.width=16",
        "nets.generator.options.blocks=2",
        "nets.generator.options.bicubic_skip=true",
        "optim.generator.lr=0.001",
        "optim.generator.betas=[0.9,0.999]",
        "training.seed=0",
        "logging.sample_every=300",
        "logging.checkpoint_every=300",
    )
    Trainer(resolve(overrides=overrides), folder).fit()
    return folder


def test_short_srresnet_beats_bicubic_on_held_out_photos(srresnet_run) -> None:
    photos = [photo[:, 100:228, 100:228] for photo in heldout_photos()]  # crops keep the test quick
    bicubic = held_out_scores(None, photos, 4)
    learnt = held_out_scores(load_superresolver(srresnet_run), photos, 4)
    assert learnt["psnr_y"] > bicubic["psnr_y"] + 0.2
    assert learnt["ssim_y"] > bicubic["ssim_y"]


def test_superres_command(srresnet_run, tmp_path, capsys) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 41, 3), dtype=np.uint8)).save(source)
    out = tmp_path / "out" / "big.png"
    assert main(["superres", str(srresnet_run), str(source), str(out), "--scale", "4", "--tile", "16"]) == 0
    with Image.open(out) as image:
        assert image.size == (164, 120) and image.mode == "RGB"
    bad = [
        (["--scale", "2"], "--scale: the model was trained for x4, not x2"),
        (["--tile", "0"], "--tile must be at least 1"),
    ]
    for flags, message in bad:
        capsys.readouterr()
        assert main(["superres", str(srresnet_run), str(source), str(out), *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    capsys.readouterr()
    assert main(["superres", str(srresnet_run), str(tmp_path / "none.png"), str(out)]) == 2
    assert "IN: " in capsys.readouterr().err


def test_superres_refuses_a_generator_of_noise(tmp_path, capsys) -> None:
    overrides = [
        "recipe.name=dcgan",
        "data.name=digits",
        "data.image_size=16",
        "nets.generator.options.width=8",
        "nets.discriminator.options.width=8",
        "training.steps=1",
        "training.batch_size=8",
        "logging.tensorboard=false",
    ]
    Trainer(resolve(overrides=overrides), tmp_path / "run").fit()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    assert main(["superres", str(tmp_path / "run"), str(tmp_path / "in.png"), str(tmp_path / "o.png")]) == 2
    assert "not a super-resolution one" in capsys.readouterr().err


def test_bicubic_downscale_keeps_flat_images_flat() -> None:
    flat = torch.full((1, 3, 16, 20), 0.25)
    small = bicubic_downscale(flat, 4)
    assert small.shape == (1, 3, 4, 5) and torch.allclose(small, flat[..., :4, :5])
    with pytest.raises(ValueError, match="does not shrink by 4"):
        bicubic_downscale(torch.zeros(1, 1, 10, 12), 4)


def test_report_shows_crops_side_by_side(srresnet_run) -> None:
    html = (srresnet_run / "report.html").read_text()
    assert "rows: bicubic upscaling, G" in html and "the original high-resolution patch" in html
    assert "Samples from fixed training inputs" in html

"""Style transfer demo: the photo-restyle dataset (domains, held-out split, the "pop-art poster" filter), the
benchmark's scores, and a few-step CycleGAN run on it.

The shared checks of the cyclegan recipe are in test_components and test_cyclegan.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig, resolve
from ganforge.data import load_dataset, restyle_photos
from ganforge.data.paired import split_pairs
from ganforge.data.restyle_photos import PATCH, PHOTOS_A, PHOTOS_B, TEST_STRIP, cut_patches, paint
from ganforge.engine import Trainer
from ganforge.translation import load_translator

RESERVED = {"chelsea.png", "coffee.png", "camera.png"}  # held out for the super-resolution benchmark
BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "style_transfer.py"


def tiny(*extra: str) -> list[str]:
    """Return overrides for a few-step cyclegan run on photo-restyle with small nets."""
    return [
        "recipe.name=cyclegan",
        "objective.name=lsgan",
        "data.name=photo-restyle",
        "nets.generator.options.width=8",
        "nets.generator.options.blocks=1",
        "nets.discriminator.options.width=8",
        "training.batch_size=8",
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


def as_bytes(patches: torch.Tensor) -> set[bytes]:
    """Return the patches (N, C, S, S) in [-1, 1] as a set of their uint8 pixels, one bytes per patch."""
    pixels = ((patches + 1) * 127.5).round().to(torch.uint8).numpy()
    return {patch.tobytes() for patch in pixels}


@pytest.fixture(scope="module")
def domains() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {split: restyle_photos.restyle_photo_domains(split) for split in ("train", "test")}


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("style_transfer_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- data -----------------------------------------------------------------------------------------------


def test_domains_have_their_shapes_and_ranges(domains: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    for split, count in (("train", restyle_photos.NUM_TRAIN), ("test", restyle_photos.NUM_TEST)):
        side_a, side_b = domains[split]
        assert side_a.shape == side_b.shape == (count, 3, PATCH, PATCH)
        assert side_a.dtype == side_b.dtype == torch.float32
        assert side_a.min() >= -1 and side_a.max() <= 1 and side_a.std() > 0.2
        assert set(side_b.unique().tolist()) == {-1.0, 0.0, 1.0}  # painted: three levels per channel
    data = load_dataset(DataConfig(name="photo-restyle"))
    assert data.x.shape == (restyle_photos.NUM_TRAIN, 6, PATCH, PATCH)
    assert data.info.pair_channels == (3, 3) and data.info.unpaired
    side_a, side_b = split_pairs(data.x, (3, 3))
    assert as_bytes(side_a) == as_bytes(domains["train"][0])  # every A patch, matched at random with B
    assert as_bytes(side_b) <= as_bytes(domains["train"][1])


def test_a_and_b_come_from_disjoint_photos_and_never_the_reserved_ones(monkeypatch) -> None:
    assert not set(PHOTOS_A) & set(PHOTOS_B)
    assert not (set(PHOTOS_A) | set(PHOTOS_B)) & RESERVED
    read: list[tuple[str, ...]] = []
    original = restyle_photos.scaled_photos

    def recording(names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        read.append(names)
        return original(names)

    monkeypatch.setattr(restyle_photos, "scaled_photos", recording)
    restyle_photos.restyle_photo_domains("test")
    assert read == [PHOTOS_A, PHOTOS_B]  # A's patches from A's photos only, B's from B's


def test_test_patches_lie_in_a_strip_that_training_patches_never_touch(
    domains: dict[str, tuple[torch.Tensor, torch.Tensor]],
) -> None:
    width = 100  # a photo whose red channel is the column index: each patch shows where it was cut
    photo = np.zeros((50, width, 3), dtype=np.uint8)
    photo[..., 0] = np.arange(width)
    train = cut_patches((photo,), 300, seed=0, split="train")[:, 0]  # (N, S, S) column indices
    test = cut_patches((photo,), 300, seed=0, split="test")[:, 0]
    assert train.max() == width - TEST_STRIP - 1 and train.min() == 0  # the whole allowed area is used
    assert test.min() == width - TEST_STRIP and test.max() == width - 1
    assert not as_bytes(domains["test"][0]) & as_bytes(domains["train"][0])
    assert not as_bytes(domains["test"][1]) & as_bytes(domains["train"][1])


# -- the filter -----------------------------------------------------------------------------------------


def test_paint_posterizes_each_channel_around_its_mean_by_hand() -> None:
    ramp = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]).expand(5, 5)  # columns; the median keeps a ramp
    # mean 0, std sqrt(0.5) = 0.707: z = -1.41, -0.71, 0, 0.71, 1.41; beyond +-0.5 -> -1 or 1
    assert torch.equal(paint(ramp[None, None]), torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]).expand(1, 1, 5, 5))
    near = torch.tensor([-1.0, -0.2969, 0.0, 0.2969, 1.0]).expand(5, 5)  # z = -1.52, -0.45, 0, 0.45, 1.52
    assert torch.equal(paint(near[None, None]), torch.tensor([-1.0, 0.0, 0.0, 0.0, 1.0]).expand(1, 1, 5, 5))
    spike = torch.zeros(1, 1, 5, 5)
    spike[0, 0, 2, 2] = 1.0  # one bright pixel: the 3x3 median removes it, the flat rest is the middle level
    assert torch.equal(paint(spike), torch.zeros(1, 1, 5, 5))


def test_paint_is_deterministic_cuts_the_colours_and_ignores_a_channel_offset(
    domains: dict[str, tuple[torch.Tensor, torch.Tensor]],
) -> None:
    photos = domains["test"][0][:64]
    painted = paint(photos)
    assert torch.equal(painted, paint(photos.clone()))
    assert np.array_equal(paint(photos.numpy()), painted.numpy())  # arrays in, arrays out
    assert torch.equal(paint(photos[:5]), painted[:5])  # each patch alone: no dependence on the batch

    before = [len(torch.unique(p.flatten(1).T, dim=0)) for p in photos]
    after = [len(torch.unique(p.flatten(1).T, dim=0)) for p in painted]
    assert max(after) <= 27 and np.median(after) < np.median(before) / 10  # 27 colours at most
    assert (painted != photos).float().mean() > 0.9  # it changes most values
    shifted = photos * 0.5 + torch.tensor([0.2, -0.3, 0.1]).view(1, 3, 1, 1)  # what CycleGAN's G cannot see
    assert (paint(shifted) != painted).float().mean() < 0.01  # (rounding at the thresholds aside)
    again = paint(painted)
    assert (again != painted).float().mean() < 0.1  # nearly idempotent: B's images are nearly fixed points


# -- benchmark and training -----------------------------------------------------------------------------


def test_benchmark_scores_a_perfect_translation_and_doing_nothing() -> None:
    benchmark = load_benchmark()
    targets = paint(torch.rand(4, 3, 8, 8) * 2 - 1)
    assert benchmark.scores(targets, targets) == (pytest.approx(100.0), 0.0, 1.0)
    grey = torch.zeros_like(targets)  # every value off by 0 or 1 (of the range 2): MSE in [0, 1] is p / 4
    share = (targets != 0).float().flatten(1).mean(dim=1)
    expected = (10 * torch.log10(4 / share)).mean().item()
    mean_psnr, l1, levels_right = benchmark.scores(grey, targets)
    assert mean_psnr == pytest.approx(expected, rel=1e-5) and l1 == pytest.approx(share.mean().item())
    assert levels_right == pytest.approx(1 - share.mean().item())
    assert torch.equal(
        benchmark.nearest_level(torch.tensor([-0.6, -0.4, 0.49, 0.51])), torch.tensor([-1.0, 0, 0, 1])
    )


def test_a_few_cyclegan_steps_on_photo_restyle_translate_colour_patches(tmp_path: Path) -> None:
    run = tmp_path / "run"
    Trainer(resolve(overrides=tiny()), run).fit()
    assert (run / "generator.safetensors").is_file() and (run / "generator_BtoA.safetensors").is_file()
    sources, _ = restyle_photos.restyle_photo_domains("test")
    translator = load_translator(run)
    assert translator.source_shape == translator.target_shape == (3, PATCH, PATCH)
    translated = translator.translate(sources[:4])
    assert translated.shape == (4, 3, PATCH, PATCH) and translated.abs().max() <= 1
    assert not torch.equal(translated, sources[:4])

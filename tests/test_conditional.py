"""Class-conditional GANs (cgan, acgan, projection): nets, AC-GAN's class terms, sampling with labels, the
class grid, the CLI's --label, and a short real training checked by a classifier.

The shared checks of every net and recipe (shapes, one step, checkpoint round trip) are in test_components.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import ganforge
from ganforge.config import resolve
from ganforge.engine import Trainer
from ganforge.errors import UserError
from ganforge.nets import NETS
from ganforge.recipes.conditional import acgan_discriminator_class_loss, acgan_generator_class_loss
from ganforge.sampling import load_generator
from test_cli_errors import assert_user_error, run_in_process

K = 10  # digits has 10 classes


def tiny(*extra: str) -> list[str]:
    """Return overrides for a few-step run on digits with small nets (over a `*-digits` preset)."""
    return [
        "data.name=digits",
        "data.num_samples=256",
        "nets.latent_dim=8",
        "nets.generator.options.width=8",
        "nets.discriminator.options.width=8",
        "training.batch_size=16",
        "training.steps=4",
        "training.threads=1",
        "logging.tensorboard=false",
        "logging.checkpoint_every=4",
        "logging.sample_every=4",
        "logging.grid_size=20",
        "monitors.enabled=false",
        *extra,
    ]


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("cgan") / "run"
    ganforge.train(preset="cgan-digits", overrides=tiny(), run_dir=run_dir)
    return run_dir


# -- nets -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cond_dcgan_generator", "cbn_dcgan_generator", "cond_mlp_generator"])
def test_generator_takes_labels_and_cycles_classes_without_them(name: str) -> None:
    net = NETS.get(name)(data_shape=(1, 8, 8), latent_dim=8, num_classes=3, **_small(name)).eval()
    z = torch.randn(7, 8)
    assert net.latent_dim == 8 and net.num_classes == 3
    out = net(z, torch.full((7,), 2))
    assert out.shape == (7, 1, 8, 8)
    assert torch.equal(net(z), net(z, torch.arange(7) % 3))  # no labels: classes 0, 1, 2, 0, ...
    assert not torch.equal(net(z, torch.zeros(7, dtype=torch.long)), net(z, torch.ones(7, dtype=torch.long)))
    with pytest.raises(ValueError, match="expected shape"):
        net(z, torch.zeros(6, dtype=torch.long))


def _small(name: str) -> dict[str, object]:
    return {"width": 8} if "dcgan" in name else {"hidden": (16, 16)}


def test_auxiliary_classifier_returns_a_logit_and_class_logits() -> None:
    for name in ("ac_dcgan_discriminator", "ac_mlp_discriminator"):
        net = NETS.get(name)(data_shape=(1, 28, 28), num_classes=K, **_small(name))
        assert net(torch.randn(4, 1, 28, 28)).shape == (4, 1 + K)


def test_projection_adds_the_class_embedding_inner_product_to_the_logit() -> None:
    net = NETS.get("proj_mlp_discriminator")(data_shape=(2,), num_classes=3, hidden=(4,))
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 2, 1, 0])
    phi = net.features(x)  # (5, 4)
    expected = net.head(phi).squeeze(1) + (net.embed.weight[y] * phi).sum(dim=1)
    assert torch.allclose(net(x, y), expected)
    with torch.no_grad():
        net.embed.weight.zero_()
    assert torch.allclose(net(x, y), net.head(phi).squeeze(1))  # no projection: the unconditional logit


def test_class_batch_norm_has_a_scale_and_shift_per_class() -> None:
    net = NETS.get("cbn_mlp_generator")(data_shape=(2,), latent_dim=4, num_classes=2, hidden=(3,))
    norm = net.norms[0]
    assert norm.gamma.weight.shape == norm.beta.weight.shape == (2, 3)
    assert not norm.norm.affine  # the only affine is the per-class one


@pytest.mark.parametrize("name", ["cbn_dcgan_generator", "cbn_mlp_generator"])
def test_shared_class_embedding_feeds_every_class_norm(name: str) -> None:
    net = NETS.get(name)(
        data_shape=(1, 8, 8), latent_dim=8, num_classes=3, shared_embedding=5, **_small(name)
    ).eval()
    assert net.embed.weight.shape == (3, 5)
    for norm in net.norms:  # gamma = 1 + W_g e, beta = W_b e, from the one embedding
        assert norm.gamma.weight.shape[1] == norm.beta.weight.shape[1] == 5
    z = torch.randn(4, 8)
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    assert not torch.equal(net(z, y0), net(z, y1))  # the classes differ from the start
    with torch.no_grad():
        net.embed.weight.zero_()  # e = 0: every norm is the plain batch norm, the same for all classes
    assert torch.equal(net(z, y0), net(z, y1))
    with pytest.raises(ValueError, match="shared_embedding"):
        NETS.get(name)(data_shape=(1, 8, 8), latent_dim=8, num_classes=3, shared_embedding=-1, **_small(name))


def test_label_map_discriminator_sees_the_label() -> None:
    net = NETS.get("cond_dcgan_discriminator")(data_shape=(1, 8, 8), num_classes=K, width=8).eval()
    x = torch.randn(3, 1, 8, 8)
    assert net(x, torch.zeros(3, dtype=torch.long)).shape == (3,)
    assert not torch.equal(net(x, torch.zeros(3, dtype=torch.long)), net(x, torch.full((3,), 5)))


# -- AC-GAN's class terms, on hand-computed values --------------------------------------------------------


def test_acgan_class_losses_on_hand_computed_values() -> None:
    ln3 = math.log(3.0)
    real = torch.tensor([[ln3, 0.0]])  # softmax (3/4, 1/4): CE for class 0 is ln(4/3)
    fake = torch.tensor([[0.0, 0.0]])  # softmax (1/2, 1/2): CE for class 1 is ln 2
    zero, one = torch.tensor([0]), torch.tensor([1])
    both = acgan_discriminator_class_loss(real, zero, fake, one)
    assert both.item() == pytest.approx(math.log(4 / 3) + math.log(2.0), abs=1e-6)
    assert acgan_discriminator_class_loss(real, zero, None, None).item() == pytest.approx(math.log(4 / 3))
    confident = torch.tensor([[0.0, ln3]])  # G's sample is 3:1 of its intended class 1
    assert acgan_generator_class_loss(confident, one).item() == pytest.approx(math.log(4 / 3), abs=1e-6)


def test_acgan_losses_add_the_weighted_class_terms(tmp_path: Path) -> None:
    def losses(weight: float) -> tuple[float, float, dict]:
        config = resolve(preset="acgan-digits", overrides=tiny(f"recipe.options.class_weight={weight}"))
        recipe = Trainer(config, tmp_path / str(weight)).recipe
        batch = ganforge.data.Batch(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]))
        torch.manual_seed(0)
        d_loss, d_stats = recipe.discriminator_loss(batch)
        torch.manual_seed(0)
        g_loss, g_stats = recipe.generator_loss(batch)
        return d_loss.item(), g_loss.item(), {**d_stats, **g_stats}

    d0, g0, _ = losses(0.0)
    d2, g2, stats = losses(2.0)
    assert d2 == pytest.approx(d0 + 2 * stats["class_loss_D"].item(), rel=1e-5)
    assert g2 == pytest.approx(g0 + 2 * stats["class_loss_G"].item(), rel=1e-5)


# -- mistakes -------------------------------------------------------------------------------------------


def test_unlabelled_data_is_refused_naming_recipe_name(tmp_path: Path, capsys) -> None:
    data = tmp_path / "points.npz"
    np.savez(data, x=np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    with pytest.raises(UserError, match=r"recipe\.name: cgan needs labelled data"):
        Trainer(resolve(overrides=["recipe.name=cgan", f"data.name=npz:{data}"]), tmp_path / "run")
    code, _, err = run_in_process(
        capsys,
        "train",
        "--preset",
        "cgan-digits",
        "--set",
        f"data.name=npz:{data}",
        "--out",
        tmp_path / "cli",
    )
    assert_user_error(code, err, "recipe.name", "labelled")


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        ("stability.pac=2", "stability.pac"),
        ("stability.unrolled_steps=2", "stability.unrolled_steps"),
        ("nets.generator.name=dcgan_generator", "nets.generator.name"),
        (
            "nets.discriminator.name=cond_dcgan_discriminator",
            "nets.discriminator.name",
        ),  # acgan needs a classifier
    ],
)
def test_unsupported_settings_are_refused_with_the_flag(extra: str, flag: str, tmp_path: Path) -> None:
    config = resolve(preset="acgan-digits", overrides=tiny(extra))
    with pytest.raises(UserError, match=flag):
        Trainer(config, tmp_path)


# -- sampling -------------------------------------------------------------------------------------------


def test_labels_are_validated(cgan_run: Path) -> None:
    sampler = load_generator(cgan_run)
    assert sampler.num_classes == K
    with pytest.raises(UserError, match=r"class 12 is outside the trained classes 0\.\.9"):
        sampler.sample(4, seed=0, labels=12)
    with pytest.raises(UserError, match="class -1 is outside"):
        sampler.sample(3, seed=0, labels=[0, -1, 2])
    with pytest.raises(UserError, match="expected a class or 4 classes"):
        sampler.sample(4, seed=0, labels=[1, 2])
    with pytest.raises(UserError, match="integer"):
        sampler.sample(2, seed=0, labels=[0.5, 1.0])


def test_same_seed_same_samples_and_labels_change_only_the_class(cgan_run: Path) -> None:
    sampler = load_generator(cgan_run)
    drawn = sampler.labels(50, None, seed=3)
    assert drawn.shape == (50,) and 0 <= drawn.min() and drawn.max() < K
    assert torch.equal(drawn, sampler.labels(50, None, seed=3))
    assert torch.equal(sampler.sample(50, seed=3), sampler.sample(50, seed=3))
    assert torch.equal(sampler.sample(50, seed=3), sampler.sample(50, seed=3, labels=drawn))
    as_int = sampler.sample(6, seed=1, labels=4)
    assert torch.equal(as_int, sampler.sample(6, seed=1, labels=torch.full((6,), 4)))
    assert torch.equal(as_int, sampler.decode(sampler.latents(6, seed=1), labels=4))  # the same latents
    assert not torch.equal(as_int, sampler.sample(6, seed=1, labels=5))


@pytest.mark.parametrize("reject", [0.0, 0.2])
def test_streaming_matches_sample_with_labels(cgan_run: Path, reject: float) -> None:
    sampler = load_generator(cgan_run, jacobian_reject=reject)
    labels = torch.arange(37) % 3
    whole = sampler.sample(37, seed=5, labels=labels, batch_size=37)
    parts = list(sampler.iter_samples(37, seed=5, batch_size=8, labels=labels))
    assert [len(p) for p in parts] == [8, 8, 8, 8, 5]
    assert torch.allclose(torch.cat(parts), whole, atol=1e-6)


def test_truncation_keeps_a_class_to_its_calm_latents(cgan_run: Path) -> None:
    sampler = load_generator(cgan_run, jacobian_reject=0.3)
    threshold = sampler.truncation_threshold()
    kept = sampler.sample(20, seed=2, labels=7)
    assert kept.shape == (20, 1, 8, 8)
    candidates = sampler.latents(200, seed=2)
    norms = sampler.latent_norms(candidates, labels=torch.full((200,), 7))
    accepted = candidates[norms <= threshold][:20]
    assert torch.allclose(sampler.decode(accepted, labels=7), kept, atol=1e-6)


def test_unconditional_generators_take_no_labels(tiny_run: Path) -> None:
    with pytest.raises(UserError, match="unconditional"):
        load_generator(tiny_run).sample(4, labels=1)


# -- class grid, report, CLI ----------------------------------------------------------------------------


def test_sample_grids_and_report_show_one_row_per_class(cgan_run: Path) -> None:
    grid = Image.open(cgan_run / "samples" / "step_00000004.png")
    columns = 2  # grid_size 20 over 10 classes
    cell = 8 * math.ceil(32 / 8)  # image_grid enlarges 8x8 images to at least 32 px
    assert grid.size == (columns * (cell + 2) + 2, K * (cell + 2) + 2)
    assert "one row per class" in (cgan_run / "report.html").read_text()


def test_cli_samples_one_class(cgan_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "threes.npz"
    code, _, err = run_in_process(
        capsys, "sample", cgan_run, "--label", "3", "--n", "12", "--seed", "0", "--out", out
    )
    assert code == 0, err
    expected = load_generator(cgan_run).sample(12, seed=0, labels=3)
    assert np.array_equal(np.load(out)["x"], ganforge.report.samples_array(expected, "images"))


def test_cli_label_mistakes_are_one_line(cgan_run: Path, tiny_run: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_in_process(capsys, "sample", cgan_run, "--label", "12", "--out", tmp_path / "a.png")
    assert_user_error(code, err, "--label", "class 12 is outside the trained classes 0..9")
    code, _, err = run_in_process(capsys, "sample", tiny_run, "--label", "3", "--out", tmp_path / "b.png")
    assert_user_error(code, err, "--label", "unconditional")


# -- a real training -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "steps"), [("acgan", 800), ("cgan", 1500), ("projection", 3000)])
def test_conditional_samples_are_of_the_asked_class(recipe: str, steps: int, tmp_path: Path) -> None:
    overrides = [f"training.steps={steps}", "training.threads=1", "logging.tensorboard=false"]
    result = ganforge.train(preset=f"{recipe}-digits", overrides=overrides, run_dir=tmp_path)
    digits = load_digits()
    real = digits.images.reshape(len(digits.images), -1) / 8.0 - 1.0  # the data's [-1, 1] scaling
    classifier = LogisticRegression(max_iter=2000).fit(real, digits.target)
    sampler = ganforge.load_generator(result.run_dir)
    hits = []
    for k in (0, 3, 6, 9):
        samples = sampler.sample(200, seed=k, labels=k).numpy().reshape(200, -1)
        hits.append(float((classifier.predict(samples) == k).mean()))
    assert min(hits) >= 0.5 and sum(hits) / len(hits) >= 0.8, hits

"""Text-to-image: captioned data, the sentence encoders, GAN-CLS's matching-aware loss, `--text` sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.config import resolve
from ganforge.data import load_dataset
from ganforge.data.captions import DIGIT_CAPTIONS, SHAPE_CAPTIONS, draw_shapes, shape_colour_and_corner
from ganforge.errors import UserError
from ganforge.metrics.captions import caption_accuracy, r_candidates, r_precision
from ganforge.nets import NETS
from ganforge.objectives import OBJECTIVES
from ganforge.recipes.text import matching_aware_fake_logits
from ganforge.text import encode_texts, minilm_available, resolve_encoder


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    """Return (exit code, stderr) of `ganforge ARGV`."""
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


# -- data ------------------------------------------------------------------------------------------------


def test_class_index_and_attributes_round_trip() -> None:
    for scheme in (DIGIT_CAPTIONS, SHAPE_CAPTIONS):
        labels = torch.arange(scheme.num_classes)
        indices = scheme.attribute_indices(labels)
        assert torch.equal(torch.from_numpy(scheme.label(indices.numpy())), labels)
        assert len(scheme.captions()) == scheme.num_classes


def test_every_phrasing_names_every_attribute() -> None:
    seven_thin_slanted = DIGIT_CAPTIONS.captions()[7 * 4 + 0 * 2 + 1]
    assert all("thin" in text and "slanted" in text for text in seven_thin_slanted)
    assert all(("seven" in text) or ("7" in text) for text in seven_thin_slanted)
    blue_triangle_bottom_right = SHAPE_CAPTIONS.captions()[2 * 12 + 2 * 4 + 3]
    for text in blue_triangle_bottom_right:
        assert "blue" in text and "triangle" in text and "bottom right" in text


def test_shapes_are_drawn_where_and_as_their_caption_says() -> None:
    data = load_dataset(resolve(overrides=["data.name=shapes"]).data)
    assert data.x.shape == (4800, 3, 32, 32) and data.info.num_classes == 48
    assert torch.equal(torch.bincount(data.y), torch.full((48,), 100))
    assert data.x.min() >= -1 and data.x.max() <= 1
    truth = SHAPE_CAPTIONS.attribute_indices(data.y)
    colour, corner = shape_colour_and_corner(data.x)
    assert torch.equal(colour, truth[:, 0]) and torch.equal(corner, truth[:, 2])
    again = load_dataset(resolve(overrides=["data.name=shapes"]).data)
    assert torch.equal(again.x, data.x)  # drawn from data.seed: every run sees the same set


def test_shape_kinds_differ_in_area() -> None:
    rng = np.random.default_rng(0)
    kinds = np.array([[0, k, 0] for k in range(3)] * 20)  # red circle, square, triangle in the top left
    images = draw_shapes(kinds, rng)
    area = ((images + 1) / 2)[:, 0].gt(0.6).float().sum(dim=(1, 2)).view(20, 3).mean(0)
    assert area[0] > area[1] > area[2]  # circle (pi r^2) > square (2.89 r^2) > triangle (1.78 r^2)


def test_captioned_digits_split_style_evenly() -> None:
    data = load_dataset(resolve(overrides=["data.name=mnist5k-captions"]).data)
    assert data.info.num_classes == 40 and len(data.info.captions) == 40
    counts = torch.bincount(data.y, minlength=40).view(10, 4)
    assert torch.equal(counts.sum(1), torch.full((10,), 500))  # still 500 of each digit
    assert counts.min() > 60  # the median splits keep every style of every digit well stocked


# -- encoders --------------------------------------------------------------------------------------------


def test_hashing_encoder_is_fixed_and_puts_similar_sentences_near() -> None:
    texts = [
        "a red circle in the top left",
        "a circle, red, at the top left",
        "a blue square in the bottom right",
    ]
    vectors = encode_texts("hashing", texts)
    assert vectors.shape == (3, 256) and torch.allclose(vectors.norm(dim=1), torch.ones(3))
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
    # the vectors come from hashes, not from a random state: fixed across runs and machines
    assert torch.equal(encode_texts("hashing", texts[:1])[0], vectors[0])
    assert round(float(vectors[0, :4].sum()), 4) == round(
        float(encode_texts("hashing", texts)[0, :4].sum()), 4
    )


def test_unknown_encoder_is_one_line() -> None:
    with pytest.raises(UserError, match="recipe.options.encoder: unknown text encoder 'bert'"):
        resolve_encoder("bert")
    assert resolve_encoder("auto") == ("minilm" if minilm_available() else "hashing")


@pytest.mark.skipif(not minilm_available(), reason="the optional extra ganforge[text] is not installed")
def test_minilm_encoder_knows_numerals_and_words() -> None:
    vectors = encode_texts("minilm", ["a handwritten seven", "the digit 7", "a red circle"])
    assert vectors.shape == (3, 384)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]


# -- the matching-aware loss -----------------------------------------------------------------------------


def test_matching_aware_loss_counts_mismatched_pairs_as_fake() -> None:
    minimax = OBJECTIVES.get("minimax")
    match, fake, mismatched = torch.tensor([2.0]), torch.tensor([-1.0]), torch.tensor([0.5])
    loss = minimax.discriminator_loss(match, matching_aware_fake_logits(fake, mismatched))
    sigmoid = torch.sigmoid
    by_hand = (
        -torch.log(sigmoid(match))
        - 0.5 * torch.log(1 - sigmoid(fake))
        - 0.5 * torch.log(1 - sigmoid(mismatched))
    )
    assert torch.allclose(loss, by_hand.squeeze())
    # a wrong caption D believes is real costs exactly what a fake D believes is real
    swapped = minimax.discriminator_loss(match, matching_aware_fake_logits(mismatched, fake))
    assert torch.allclose(loss, swapped)
    believed = minimax.discriminator_loss(match, matching_aware_fake_logits(fake, torch.tensor([3.0])))
    assert believed > loss
    with pytest.raises(ValueError, match="pair up"):
        matching_aware_fake_logits(torch.zeros(2), torch.zeros(3))


def test_inner_product_term_adds_the_text_projection_to_the_logit() -> None:
    net = NETS.get("text_dcgan_discriminator")(
        data_shape=(3, 16, 16), num_classes=4, text_dim=6, projection=5, width=8, inner_product=True
    ).eval()
    x, text = torch.randn(3, 3, 16, 16), torch.randn(3, 6)
    with torch.no_grad():
        features = net.trunk(x)
        words = net.squeeze(text)
        tiled = words[:, :, None, None].expand(-1, -1, *features.shape[2:])
        concat = net.joint(torch.cat([features, tiled], dim=1)).flatten()
        expected = concat + (net.inner(features.flatten(1)) * words).sum(dim=1)
        assert torch.allclose(net(x, text=text), expected, atol=1e-6)
        net.inner.weight.zero_()
        assert torch.allclose(net(x, text=text), concat, atol=1e-6)  # no projection: the paper's D


# -- the recipe, sampling and the CLI --------------------------------------------------------------------


TINY = [
    "recipe.name=gancls",
    "recipe.options.encoder=hashing",
    "data.name=shapes",
    "data.image_size=16",
    "nets.latent_dim=16",
    "nets.generator.options.width=16",
    "nets.discriminator.options.width=16",
    "training.batch_size=32",
    "training.threads=2",
    "logging.tensorboard=false",
]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A short gancls run on 16x16 shapes: what sampling from text needs, not a good generator."""
    run = tmp_path_factory.mktemp("gancls")
    ganforge.train(overrides=[*TINY, "training.steps=20", "logging.sample_every=20"], run_dir=run)
    return run


def test_gancls_run_samples_by_text_by_label_and_by_class_grid(text_run) -> None:
    sampler = ganforge.load_generator(text_run)
    assert sampler.takes_text and sampler.net.encoder == "hashing" and sampler.num_classes == 48
    by_text = sampler.sample(4, seed=0, text="a red circle in the top left")
    assert by_text.shape == (4, 3, 16, 16)
    # a label means its class's first phrasing, which the recipe stored in the generator
    first = load_dataset(resolve(overrides=["data.name=shapes"]).data).info.captions[5][0]
    assert torch.equal(sampler.sample(4, seed=0, labels=5), sampler.sample(4, seed=0, text=first))
    assert (text_run / "samples" / "step_00000020.png").is_file()  # a class grid: one row per caption


def test_caption_accuracy_reads_real_images_perfectly(text_run) -> None:
    sampler = ganforge.load_generator(text_run)
    real = load_dataset(resolve(overrides=["data.name=shapes", "data.image_size=16"]).data)
    scores = caption_accuracy(sampler, real, per_class=2, epochs=1)
    attributes = ["colour", "shape", "corner", "all", "r_precision"]
    assert set(scores) == {*attributes, *(f"real_{name}" for name in attributes)}
    assert scores["real_colour"] == scores["real_corner"] == 1.0  # measured, not learned
    assert scores["real_r_precision"] >= scores["real_all"]  # all three right: own caption alone on top
    assert all(0 <= value <= 1 for value in scores.values())
    with pytest.raises(UserError, match="needs a captioned set"):
        caption_accuracy(sampler, load_dataset(resolve(overrides=["data.name=digits"]).data))
    with pytest.raises(UserError, match="r: R-precision"):
        caption_accuracy(sampler, real, per_class=1, epochs=1, r=49)


def test_r_precision_on_hand_computed_cases() -> None:
    seen = torch.tensor([[0, 1, 2], [0, 1, 2], [0, 1, 2], [3, 3, 3]])
    candidates = torch.tensor(
        [
            [[0, 1, 2], [0, 1, 0], [1, 1, 1]],  # own caption matches all three: a hit
            [[0, 1, 0], [0, 1, 2], [1, 1, 1]],  # another matches better: a miss
            [[0, 1, 0], [0, 0, 2], [1, 1, 1]],  # own ties with one other at two: half a hit
            [[0, 0, 0], [1, 1, 1], [2, 2, 2]],  # nothing matches: all three tie, a third
        ]
    )
    assert torch.allclose(r_precision(seen, candidates), torch.tensor([1.0, 0.0, 0.5, 1 / 3]))
    labels = torch.tensor([0, 5, 5, 47] * 50)
    drawn = r_candidates(labels, 48, 10, seed=0)
    assert drawn.shape == (200, 10) and torch.equal(drawn[:, 0], labels)
    for row, label in zip(drawn, labels, strict=True):  # the others: distinct, never the own class
        assert len(set(row.tolist())) == 10 and label not in row[1:]
    assert torch.equal(drawn, r_candidates(labels, 48, 10, seed=0))


def test_text_sampling_is_seeded_and_streams(text_run) -> None:
    sampler = ganforge.load_generator(text_run)
    texts = ["a red circle in the top left", "a blue triangle in the bottom right"] * 5
    whole = sampler.sample(10, seed=3, text=texts, batch_size=3)
    assert torch.equal(whole, torch.cat(list(sampler.iter_samples(10, seed=3, batch_size=3, text=texts))))
    # other batch sizes agree up to the last bits of a matrix product's blocking
    assert torch.allclose(whole[:1], sampler.sample(1, seed=3, text=texts[0]), atol=1e-5)
    with pytest.raises(UserError, match="one or the other"):
        sampler.sample(4, seed=0, labels=1, text="a red circle")
    with pytest.raises(UserError, match="one sentence or 4"):
        sampler.sample(4, seed=0, text=["a red circle"] * 3)


def test_cli_samples_from_text(text_run, tmp_path, capsys) -> None:
    out = tmp_path / "red.png"
    code, err = run_cli(capsys, "sample", text_run, "--n", "8", "--text", "a red circle", "--out", out)
    assert code == 0 and out.is_file(), err
    code, err = run_cli(capsys, "sample", text_run, "--text", "a red circle", "--label", "2", "--out", out)
    assert code == 2 and "--text: give --label or --text, not both" in err
    code, err = run_cli(capsys, "sample", text_run, "--text", "  ", "--out", out)
    assert code == 2 and "--text: the sentence is empty" in err


def test_text_for_a_run_without_text_conditioning_is_one_line(tiny_run, tmp_path, capsys) -> None:
    code, err = run_cli(capsys, "sample", tiny_run, "--text", "a red circle", "--out", tmp_path / "x.png")
    assert code == 2 and "--text:" in err and "no text conditioning" in err and "Traceback" not in err


def test_gancls_refuses_data_without_captions(tmp_path) -> None:
    with pytest.raises(UserError, match="data.name: gancls needs captioned images"):
        ganforge.train(overrides=[*TINY[:2], "data.name=mnist5k", "training.steps=1"], run_dir=tmp_path)
    with pytest.raises(UserError, match="nets.generator.name: gancls needs a net like text_dcgan_generator"):
        ganforge.train(overrides=[*TINY, "nets.generator.name=cond_dcgan_generator"], run_dir=tmp_path)


# -- a real training -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_gancls_draws_the_colour_and_corner_its_sentence_names(tmp_path) -> None:
    """1,200 steps on 16x16 shapes (about 15 s): colour and corner follow the sentence (chance 0.25) and the
    own caption wins R-precision far above chance (0.1). The shape's kind needs longer runs (docs)."""
    overrides = [*TINY, "training.steps=1200", "training.threads=1", "monitors.enabled=false"]
    run = ganforge.train(preset="gancls-shapes", overrides=overrides, run_dir=tmp_path).run_dir
    real = load_dataset(resolve(overrides=["data.name=shapes", "data.image_size=16"]).data)
    scores = caption_accuracy(ganforge.load_generator(run), real, per_class=10, epochs=2)
    assert scores["colour"] >= 0.8 and scores["corner"] >= 0.8 and scores["r_precision"] >= 0.4, scores

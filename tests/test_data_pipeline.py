"""The folder cache (decode once, keyed by the folder hash) and batched augmentation of real images."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data import BatchLoader, DataInfo, TensorData, images, load_dataset
from ganforge.data.augment import augment_batch
from ganforge.data.cache import default_cache_dir, folder_hash
from ganforge.errors import UserError

CPU = torch.device("cpu")
LONG_AGO_NS = 1_700_000_000 * 10**9  # a fixed past mtime: files older than the racy window get cached


def save_png(path: Path, pixels: np.ndarray, mtime_ns: int = LONG_AGO_NS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Return a folder of three 8x8 colour images (one in a subfolder), all modified long ago."""
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "sub/c.png"):
        save_png(tmp_path / "photos" / name, rng.integers(0, 256, (8, 8, 3)))
    return tmp_path / "photos"


def load(folder: Path, cache_dir: Path | None, **options: object) -> TensorData:
    return load_dataset(
        DataConfig(name=f"folder:{folder}", cache_dir=cache_dir and str(cache_dir), **options)
    )


def forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was opened although the cache holds the folder")

    monkeypatch.setattr(images, "_read_image", refuse)
    monkeypatch.setattr(images.Image, "open", refuse)


def cache_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("folder cache")]


# -- folder cache ----------------------------------------------------------------------------------------


def test_cache_miss_then_hit_gives_the_decoded_tensors(
    photos: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="ganforge")
    cache = tmp_path / "cache"
    decoded = load(photos, cache, cache=False)
    assert not cache.exists()

    first = load(photos, cache)
    key = folder_hash(photos, "auto", None)
    assert sorted(p.name for p in cache.iterdir()) == [f"folder-{key[:16]}.json", f"folder-{key[:16]}.npy"]
    assert np.load(cache / f"folder-{key[:16]}.npy").shape == (3, 3, 8, 8)

    forbid_decoding(monkeypatch)
    again = load(photos, cache)
    assert torch.equal(decoded.x, first.x) and torch.equal(decoded.x, again.x)
    assert again.info == decoded.info == DataInfo(f"folder:{photos}", "images", (3, 8, 8), None)
    off, miss, hit = cache_messages(caplog)
    assert "off" in off and "miss" in miss and "hit" in hit
    assert all(key in message for message in (off, miss, hit))  # the full hash, for the run's log


def test_cache_defaults_to_ganforge_cache(photos: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    load(photos, None)
    assert len(list((tmp_path / "env-cache").glob("folder-*.npy"))) == 1


def test_cache_with_image_size_and_grayscale(photos: Path, tmp_path: Path, monkeypatch) -> None:
    options = {"image_size": 4, "channels": "grayscale"}
    decoded = load(photos, None, cache=False, **options)
    load(photos, tmp_path / "cache", **options)
    forbid_decoding(monkeypatch)
    cached = load(photos, tmp_path / "cache", **options)
    assert cached.x.shape == (3, 1, 4, 4) and torch.equal(cached.x, decoded.x)


def test_folder_hash_follows_files_mode_and_size(photos: Path) -> None:
    key = folder_hash(photos, "auto", None)
    assert len(key) == 64 and key == folder_hash(photos, "auto", None)
    others = {folder_hash(photos, "RGB", None), folder_hash(photos, "auto", 4)}

    os.utime(photos / "a.png", ns=(LONG_AGO_NS, LONG_AGO_NS + 1))  # touched: a new mtime
    others.add(folder_hash(photos, "auto", None))
    save_png(photos / "a.png", np.zeros((16, 16, 3)))  # another size
    others.add(folder_hash(photos, "auto", None))
    save_png(photos / "sub/d.png", np.zeros((8, 8, 3)))  # one more file
    others.add(folder_hash(photos, "auto", None))
    (photos / "sub/d.png").rename(photos / "d.png")  # moved
    others.add(folder_hash(photos, "auto", None))
    assert len(others | {key}) == 7


def test_changed_or_added_file_invalidates_the_cache(photos: Path, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ganforge")
    cache = tmp_path / "cache"
    load(photos, cache)
    save_png(photos / "a.png", np.full((8, 8, 3), 255), mtime_ns=LONG_AGO_NS + 10**9)
    changed = load(photos, cache)
    assert torch.equal(changed.x[0], torch.ones(3, 8, 8))  # a.png's new pixels, not the cached ones
    save_png(photos / "e.png", np.zeros((8, 8, 3)))
    assert len(load(photos, cache).x) == 4
    assert [m.split(",")[0] for m in cache_messages(caplog)] == ["folder cache: miss"] * 3
    assert len(list(cache.glob("folder-*.npy"))) == 3


def test_cache_off_decodes_and_writes_nothing(photos: Path, tmp_path: Path, monkeypatch) -> None:
    load(photos, tmp_path / "cache")  # a cache that data.cache=false must not read
    decode = images._read_image
    reads: list[Path] = []
    monkeypatch.setattr(images, "_read_image", lambda path, *args: reads.append(path) or decode(path, *args))
    load(photos, tmp_path / "cache", cache=False)
    load(photos, tmp_path / "unused", cache=False)
    assert len(reads) == 6 and not (tmp_path / "unused").exists()


def test_recently_changed_files_are_not_cached(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ganforge")
    # Modified just now: it may change again within the same mtime tick, unseen by the hash.
    save_png(tmp_path / "photos/new.png", np.zeros((8, 8)), mtime_ns=time.time_ns())
    assert load(tmp_path / "photos", tmp_path / "cache").x.shape == (1, 1, 8, 8)
    assert not list(tmp_path.glob("cache/folder-*"))
    assert "not written" in cache_messages(caplog)[-1]


def test_unwritable_cache_dir_only_warns(photos: Path, tmp_path: Path, caplog) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("a file where the cache folder should be")  # fails even for root, unlike chmod
    data = load(photos, blocked / "cache")
    assert data.x.shape == (3, 3, 8, 8)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cannot write" in message for message in warnings)


def damage_pixels(npy: Path) -> None:
    npy.write_bytes(npy.read_bytes()[:-50])  # truncated


def damage_shape(npy: Path) -> None:
    np.save(npy, np.zeros((2, 3, 8, 8), np.uint8))


def damage_header(npy: Path) -> None:
    npy.write_bytes(b"not an array at all")


def damage_sidecar(npy: Path) -> None:
    npy.with_suffix(".json").write_text("{broken")


@pytest.mark.parametrize("damage", [damage_pixels, damage_shape, damage_header, damage_sidecar])
def test_damaged_cache_is_rebuilt(damage, photos: Path, tmp_path: Path, monkeypatch, caplog) -> None:
    cache = tmp_path / "cache"
    decoded = load(photos, cache)
    (npy,) = cache.glob("folder-*.npy")
    damage(npy)
    rebuilt = load(photos, cache)
    assert torch.equal(rebuilt.x, decoded.x)
    assert any(r.levelno == logging.WARNING and str(npy) in r.getMessage() for r in caplog.records)
    forbid_decoding(monkeypatch)  # the rewritten cache is whole
    assert torch.equal(load(photos, cache).x, decoded.x)


# -- augmentation ----------------------------------------------------------------------------------------


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_hflip_mirrors_about_half_the_images() -> None:
    x = torch.rand(400, 3, 8, 8, generator=seeded(1)) * 2 - 1
    out = augment_batch(x, ["hflip"], seeded())
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same ^ mirrored).all())  # every image is itself or its mirror (never both: random pixels)
    assert 160 < int(mirrored.sum()) < 240


@pytest.mark.parametrize("height, width", [(16, 16), (16, 32), (7, 16)])
def test_translate_shifts_content_and_fills_with_minus_one(height: int, width: int) -> None:
    count, top, left = 400, height // 2, width // 2
    x = torch.rand(count, 2, height, width, generator=seeded(1)) * 1.8 - 0.9  # (N, C, H, W) in (-0.9, 0.9)
    x[:, :, top, left] = 1.0  # a bright marker pixel, to find each image's shift
    out = augment_batch(x, ["translate"], seeded())
    shifts = set()
    for image, shifted in zip(x, out, strict=True):
        row, col = divmod(int(shifted[0].flatten().argmax()), width)
        dy, dx = row - top, col - left
        expected = torch.full_like(image, -1.0)
        expected[:, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
            :, max(-dy, 0) : height - max(dy, 0), max(-dx, 0) : width - max(dx, 0)
        ]
        assert torch.equal(shifted, expected)
        shifts.add((dy, dx))
    reach_y, reach_x = height // 8, width // 8
    assert shifts == {(dy, dx) for dy in range(-reach_y, reach_y + 1) for dx in range(-reach_x, reach_x + 1)}


def test_augment_repeats_with_its_generator_only() -> None:
    x = torch.rand(32, 3, 16, 16, generator=seeded(1))
    torch.manual_seed(0)
    global_state = torch.get_rng_state()
    first = augment_batch(x, ["hflip", "translate"], seeded(5))
    assert torch.equal(torch.get_rng_state(), global_state)  # the global generator is never drawn from
    assert torch.equal(first, augment_batch(x, ["hflip", "translate"], seeded(5)))
    assert not torch.equal(first, augment_batch(x, ["hflip", "translate"], seeded(6)))
    assert augment_batch(x, [], seeded(5)) is x


def test_augment_keeps_the_memory_format() -> None:
    x = torch.rand(8, 3, 16, 16, generator=seeded(1))
    for policies in (["hflip"], ["translate"], ["translate", "hflip"]):
        plain = augment_batch(x, policies, seeded())
        channels_last = augment_batch(x.contiguous(memory_format=torch.channels_last), policies, seeded())
        assert plain.is_contiguous()
        assert (
            channels_last.is_contiguous(memory_format=torch.channels_last)
            and not channels_last.is_contiguous()
        )
        assert torch.equal(plain, channels_last)


def test_augmented_shards_make_up_the_augmented_batch() -> None:
    x = torch.rand(8, 1, 16, 16, generator=seeded(1))
    whole = augment_batch(x, ["hflip", "translate"], seeded())
    halves = [
        augment_batch(x[i : i + 4], ["hflip", "translate"], seeded(), batch_size=8, offset=i) for i in (0, 4)
    ]
    assert torch.equal(whole, torch.cat(halves))


def test_augment_rejects_unknown_policies_and_points() -> None:
    with pytest.raises(ValueError, match="'rotate'.*known: hflip, translate"):
        augment_batch(torch.zeros(2, 1, 8, 8), ["rotate"], seeded())
    with pytest.raises(ValueError, match="images"):
        augment_batch(torch.zeros(2, 8), ["hflip"], seeded())


# -- the batch loader with augmentation ------------------------------------------------------------------


def image_data(count: int = 40) -> TensorData:
    x = torch.rand(count, 1, 16, 16, generator=seeded(2)) * 2 - 1
    return TensorData(x, torch.arange(count), DataInfo("noise", "images", (1, 16, 16), count))


def test_loader_augments_and_resumes_to_the_same_batches() -> None:
    data = image_data()  # 5 batches of 8 an epoch
    loader = BatchLoader(data, 8, seed=3, device=CPU, augment=("hflip", "translate"))
    plain = BatchLoader(data, 8, seed=3, device=CPU)
    batches = [loader.next() for _ in range(12)]  # into the third epoch
    plain_batches = [plain.next() for _ in range(12)]
    for batch, unaugmented in zip(batches, plain_batches, strict=True):
        assert torch.equal(batch.y, unaugmented.y)  # the same order, only the images augmented
    assert not any(torch.equal(b.x, u.x) for b, u in zip(batches, plain_batches, strict=True))
    epochs = [
        torch.cat([b.x for b in batches[e : e + 5]])[torch.cat([b.y for b in batches[e : e + 5]]).argsort()]
        for e in (0, 5)
    ]  # (40, 1, 16, 16): every sample of an epoch, by label
    assert not torch.equal(epochs[0], epochs[1])  # a sample seen again is augmented anew

    resumed = BatchLoader(data, 8, seed=3, device=CPU, augment=("hflip", "translate"))
    replay = BatchLoader(data, 8, seed=3, device=CPU, augment=("hflip", "translate"))
    for _ in range(7):
        replay.next()
    resumed.load_state_dict(replay.state_dict())
    for expected in batches[7:]:
        batch = resumed.next()
        assert torch.equal(batch.x, expected.x) and torch.equal(batch.y, expected.y)


def test_loader_shards_augmented_batches_like_one_process() -> None:
    data = image_data()
    single = BatchLoader(data, 8, seed=3, device=CPU, augment=["hflip", "translate"])
    ranks = [
        BatchLoader(data, 8, seed=3, device=CPU, rank=r, world=2, augment=["hflip", "translate"])
        for r in (0, 1)
    ]
    for _ in range(6):
        assert torch.equal(single.next().x, torch.cat([rank.next().x for rank in ranks]))


def test_loader_rejects_augment_for_points_and_unknown_policies() -> None:
    points = TensorData(torch.zeros(32, 2), None, DataInfo("ring8", "points", (2,), None))
    with pytest.raises(UserError, match=r"data\.augment: hflip .*only for images.*'ring8' holds points"):
        BatchLoader(points, 8, seed=0, device=CPU, augment=["hflip"])
    BatchLoader(points, 8, seed=0, device=CPU)  # no augmentation: points are fine
    with pytest.raises(UserError, match=r"data\.augment: unknown policy 'rotate'"):
        BatchLoader(image_data(), 8, seed=0, device=CPU, augment=["rotate"])


def test_config_accepts_known_augment_policies_only() -> None:
    assert DataConfig(augment=["translate", "hflip"]).augment == ["translate", "hflip"]
    assert DataConfig().augment == [] and DataConfig().cache and DataConfig().cache_dir is None
    with pytest.raises(ValueError, match="augment"):
        DataConfig(augment=["rotate"])

"""`photo-restyle`: unpaired 32x32 colour patches, photos (A) and "posters" painted from OTHER photos (B).

A CycleGAN demo whose right answer is known. Both domains are cut from the colour photos bundled with
scikit-image (read with PIL from the package's folder, never imported, never downloaded), each scaled so
that its shorter side is 128 pixels (photos.SHORT_SIDE), as `photo-patches` does:

- domain A: plain patches of PHOTOS_A (astronaut, left motorcycle, rocket);
- domain B: patches of PHOTOS_B (right motorcycle, immunohistochemistry slide, retina), never a photo of A,
  passed through `paint`. The right motorcycle is the left one's stereo twin (a separate photo, taken from
  a few centimetres to the side): like a user's two folders, both domains then share some kind of content.

The filter `paint`, a "pop-art poster" style, works on each 32x32 patch alone and is deterministic:

1. a 3x3 median filter per channel (edges padded by replication): flattens fine texture into areas;
2. each channel standardized over the patch, z = (x - mean) / std (population std);
3. each channel posterized to three values by z: -1 (none of that colour) where z < -THRESHOLD,
   1 (full) where z > THRESHOLD, 0 (half) between; THRESHOLD = 0.5 std.

At most 27 colours remain, in flat saturated blocks, and the patch's own colour cast is gone (each channel
is stretched to its own spread). Why standardize rather than posterize the raw values: CycleGAN's generator
instance-normalizes its first layer, which makes it blind to a constant added to any input channel (and to
a common scale), so it cannot tell how bright a patch was; a filter of the raw levels would ask it for
something it cannot see. This filter depends only on what the generator can see, so it can be learnt
exactly in principle. Nearly flat patches (sky, black background) turn into speckle, their noise stretched.
It is nearly idempotent (painting a painted patch changes ~3% of the values). For a held-out photo patch a,
the ideal A -> B translation is `paint(a)`: benchmarks/style_transfer.py scores a run by how close G_AB(a)
comes to it. B -> A has no single answer (the filter loses the colours and the detail).

Splits: the rightmost TEST_STRIP = 40 columns of every photo (both domains) are held out; training
patches lie wholly left of the strip and test patches wholly inside it, so no test pixel is ever in the
dataset. Patches are drawn with fixed seeds (the data never changes with `data.seed`; only the random
matching of A with B does): for each patch a photo of its domain uniformly at random, then a top-left
corner uniformly over the allowed area. NUM_TRAIN = 2,000 patches per domain; NUM_TEST = 250 per domain.
Patches are cut at 32x32; `data.image_size` rescales the dataset's images as for any built-in set (after
painting), but the benchmark's test patches stay 32x32.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.config import DataConfig
from ganforge.data.base import DATASETS, TensorData
from ganforge.data.paired import unpaired_data
from ganforge.data.photos import scaled_photos as _scaled_photos

PHOTOS_A = ("astronaut.png", "motorcycle_left.png", "rocket.jpg")  # domain A: photos as they are
PHOTOS_B = ("motorcycle_right.png", "ihc.png", "retina.jpg")  # domain B: painted; none of them in A
PATCH = 32  # patch side
TEST_STRIP = 40  # rightmost columns of every scaled photo kept out of training (>= PATCH)
THRESHOLD = 0.5  # standardized level (in stds from the channel mean) beyond which a channel is 0 or full
MEDIAN = 3  # side of the median filter's window
NUM_TRAIN = 2_000  # training patches per domain
NUM_TEST = 250  # held-out test patches per domain
SEEDS = {("A", "train"): 11, ("B", "train"): 12, ("A", "test"): 13, ("B", "test"): 14}  # patch draws


def scaled_photos(names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Return the named photos as uint8 (H, W, 3) arrays with shorter side 128 (data/photos.py's SHORT_SIDE);
    read once a process."""
    return _scaled_photos(names, "photo-restyle")


def cut_patches(photos: tuple[np.ndarray, ...], count: int, seed: int, split: str) -> np.ndarray:
    """Return `count` patches uint8 (count, 3, PATCH, PATCH) of `photos`: left of each photo's test strip
    for "train", inside it for "test" (module docstring)."""
    rng = np.random.default_rng(seed)
    patches = np.empty((count, PATCH, PATCH, 3), dtype=np.uint8)
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        height, width = photo.shape[:2]
        strip = width - TEST_STRIP  # first held-out column
        first, last = (0, strip - PATCH) if split == "train" else (strip, width - PATCH)  # left corners
        top = rng.integers(height - PATCH + 1)
        left = rng.integers(first, last + 1)
        patches[i] = photo[top : top + PATCH, left : left + PATCH]
    return np.ascontiguousarray(patches.transpose(0, 3, 1, 2))


def paint(x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Return images x (N, C, S, S) in [-1, 1] in domain B's "pop-art poster" style, values in {-1, 0, 1}:
    a 3x3 median filter per channel, then each channel, standardized over its image, posterized to three
    levels at +-THRESHOLD (module docstring). A numpy array in gives a float32 array out."""
    if isinstance(x, np.ndarray):
        return paint(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()
    if x.ndim != 4:
        raise ValueError(f"paint needs images (N, C, S, S), got shape {tuple(x.shape)}")
    pad = MEDIAN // 2
    padded = F.pad(x.float(), (pad, pad, pad, pad), mode="replicate")
    windows = padded.unfold(2, MEDIAN, 1).unfold(3, MEDIAN, 1)  # (N, C, S, S, MEDIAN, MEDIAN)
    smooth = windows.flatten(-2).median(dim=-1).values  # (N, C, S, S); odd window: the true median
    mean = smooth.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    spread = smooth.std(dim=(2, 3), keepdim=True, correction=0)
    z = (smooth - mean) / (spread + 1e-6)  # a flat channel: z = 0, the middle level
    return (z > THRESHOLD).float() - (z < -THRESHOLD).float()


def restyle_photo_domains(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Return photo-restyle's (A patches, B patches), each (N, 3, 32, 32) in [-1, 1], B already painted.

    "train": the NUM_TRAIN patches per domain the dataset holds; "test": NUM_TEST other patches per domain
    from the held-out strips, never in the dataset. A and B never share a photo.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    count = NUM_TRAIN if split == "train" else NUM_TEST
    sides = []
    for side, names in (("A", PHOTOS_A), ("B", PHOTOS_B)):
        pixels = cut_patches(scaled_photos(names), count, SEEDS[side, split], split)
        sides.append(torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0))
    side_a, photos_b = sides
    return side_a, paint(photos_b)


@DATASETS.register("photo-restyle", "unpaired: 32x32 photo patches (A), other photos' patches posterized (B)")
def photo_restyle(argument: str, config: DataConfig) -> TensorData:
    side_a, side_b = restyle_photo_domains("train")
    return unpaired_data(side_a, side_b, None, "photo-restyle", config.seed)

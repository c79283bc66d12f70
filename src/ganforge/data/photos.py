"""`photo-patches`: 32x32 colour patches cut from the photos that ship inside the scikit-image wheel.

Never a download: the photos are files of the installed scikit-image package, found through its folder
without importing it (importing skimage is slow and pulls in scipy). They are read with PIL.

Rule: each photo is first scaled (Lanczos) so that its shorter side is SHORT_SIDE = 128 pixels; a 32x32
patch then covers a quarter of that side, enough to show a recognisable structure (an eye, a cup's rim, a
wheel's spokes, a galaxy) rather than a flat piece of texture. NUM_PATCHES = 5,000 patches are drawn with
`data.seed`: for each, a photo uniformly at random, then a top-left corner uniformly over that photo. Values
are in [-1, 1]; the set is unlabelled. `write_patch_folder` writes the first patches as PNG files, so that
the same data can be read back as `folder:PATH` (benchmarks/lapgan.py does).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data.base import DATASETS, TensorData, labelled
from ganforge.errors import UserError

# The colour photographs among scikit-image's bundled files (not the drawings, grey images or test charts).
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "rocket.jpg",
)
SHORT_SIDE = 128  # each photo's shorter side after scaling, in pixels
PATCH = 32  # patch side
NUM_PATCHES = 5_000


def photo_folder() -> Path:
    """Return scikit-image's data folder, found without importing the package."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("data.name: photo-patches needs the scikit-image package (pip install scikit-image)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@functools.lru_cache(maxsize=4)
def scaled_photos(names: tuple[str, ...] = PHOTOS, dataset: str = "photo-patches") -> tuple[np.ndarray, ...]:
    """Return scikit-image's photos `names` as uint8 (H, W, 3) arrays with shorter side SHORT_SIDE; read once
    a process. `dataset` names the set that needs them in the error for a missing photo."""
    folder = photo_folder()
    photos = []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise UserError(f"data.name: {dataset} needs {name} from scikit-image, not found in {folder}")
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = SHORT_SIDE / min(image.size)
            size = (max(PATCH, round(image.width * scale)), max(PATCH, round(image.height * scale)))
            array = np.asarray(image.resize(size, Image.Resampling.LANCZOS))
        array.flags.writeable = False
        photos.append(array)
    return tuple(photos)


def random_patches(photos: Sequence[np.ndarray], side: int, count: int, seed: int) -> np.ndarray:
    """Return `count` patches uint8 (count, 3, side, side) of uint8 (H, W, 3) photos, each drawn with `seed`'s
    stream: a photo uniformly at random, then a top-left corner uniformly over it. The first k patches do
    not depend on `count`."""
    rng = np.random.default_rng(seed)
    patches = np.empty((count, side, side, 3), dtype=np.uint8)
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        top = rng.integers(photo.shape[0] - side + 1)
        left = rng.integers(photo.shape[1] - side + 1)
        patches[i] = photo[top : top + side, left : left + side]
    return np.ascontiguousarray(patches.transpose(0, 3, 1, 2))


def photo_patches(count: int, seed: int) -> np.ndarray:
    """Return `count` patches as uint8 (count, 3, PATCH, PATCH), drawn with `seed` (module docstring)."""
    return random_patches(scaled_photos(), PATCH, count, seed)


@DATASETS.register("photo-patches", "5,000 32x32 colour patches of scikit-image's bundled photos, unlabelled")
def photo_patches_dataset(_: str, config: DataConfig) -> TensorData:
    pixels = photo_patches(NUM_PATCHES, config.seed)  # (N, 3, 32, 32) uint8
    x = torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0)
    return labelled(x, None, "photo-patches", "images")


def write_patch_folder(folder: str | Path, count: int, seed: int = 0) -> Path:
    """Write the first `count` patches of `photo-patches` (data seed `seed`) as PNGs; return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, patch in enumerate(photo_patches(count, seed)):
        Image.fromarray(patch.transpose(1, 2, 0)).save(folder / f"patch_{i:05d}.png")
    return folder

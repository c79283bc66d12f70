"""High-resolution patches for super-resolution (SRGAN): cut from photos at their own resolution.

A super-resolution run trains on high-resolution patches only; the recipe makes each low-resolution input by
shrinking its patch (nets.srresnet.bicubic_downscale). So these sets are plain unlabelled images.

- `sr-photos`: patches of scikit-image's bundled photos (never a download; read with PIL through the
  package's folder). Training photos: TRAIN_PHOTOS, colour and grey (grey ones repeated to 3 channels). Three
  photos are held out and never cut from: HELDOUT_PHOTOS, the evaluation set (`heldout_photos()`).
- `patches:PATH`: the same from every image in a folder of the user's photos.

Rule: NUM_PATCHES patches of side `data.image_size` (default PATCH_SIDE, the paper's 96) are drawn with
`data.seed`: for each, a photo uniformly at random, then a top-left corner uniformly over that photo. A
photo smaller than the patch is an error naming it. Values in [-1, 1].
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganforge.config import DataConfig
from ganforge.data.base import DATASETS, TensorData, labelled
from ganforge.data.cache import IMAGE_SUFFIXES, image_files
from ganforge.data.photos import photo_folder, random_patches
from ganforge.errors import UserError

TRAIN_PHOTOS = (
    "astronaut.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "rocket.jpg",
    "retina.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
    "coins.png",
    "moon.png",
    "page.png",
)
HELDOUT_PHOTOS = ("chelsea.png", "coffee.png", "camera.png")  # the evaluation photos; never trained on
PATCH_SIDE = 96  # the paper's high-resolution patch side
NUM_PATCHES = 10_000


def read_photo(path: Path, field: str = "data.name") -> np.ndarray:
    """Return the photo at `path` as uint8 (H, W, 3), grey repeated to three channels."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{field}: cannot read image {str(path)!r} ({exc.__class__.__name__})") from None


@functools.lru_cache(maxsize=1)
def _skimage_photos(names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    folder = photo_folder()
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise UserError(f"data.name: sr-photos needs {missing[0]} from scikit-image, not found in {folder}")
    return tuple(read_photo(folder / name) for name in names)


def heldout_photos() -> list[torch.Tensor]:
    """Return the held-out evaluation photos as (3, H, W) tensors in [-1, 1], at their own sizes."""
    return [_to_tensor(photo) for photo in _skimage_photos(HELDOUT_PHOTOS)]


def _to_tensor(photo: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(photo.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0)


def cut_patches(photos: list[np.ndarray], names: list[str], side: int, count: int, seed: int) -> torch.Tensor:
    """Return `count` patches (count, 3, side, side) in [-1, 1] cut from uint8 (H, W, 3) photos (module
    docstring); `names` name the photos in the error for one smaller than the patch."""
    for photo, name in zip(photos, names, strict=True):
        if min(photo.shape[:2]) < side:
            raise UserError(
                f"data.image_size: {name} is {photo.shape[1]}x{photo.shape[0]}, smaller than the "
                f"{side}-pixel patches; use smaller patches or leave that photo out"
            )
    patches = random_patches(photos, side, count, seed)  # (count, 3, side, side) uint8
    return torch.from_numpy(patches.astype(np.float32) / 127.5 - 1.0)


@DATASETS.register("sr-photos", "96x96 patches of scikit-image's photos at full resolution (3 held out)")
def sr_photos(_: str, config: DataConfig) -> TensorData:
    side = config.image_size or PATCH_SIDE
    photos = list(_skimage_photos(TRAIN_PHOTOS))
    x = cut_patches(photos, list(TRAIN_PHOTOS), side, NUM_PATCHES, config.seed)
    return labelled(x, None, "sr-photos", "images")


@DATASETS.register("patches:PATH", "96x96 patches cut from a folder of photos at their own resolution")
def folder_patches(argument: str, config: DataConfig) -> TensorData:
    folder = Path(argument).expanduser()
    if not argument or not folder.is_dir():
        raise UserError(f"data.name: patches folder {argument!r} does not exist or is not a folder")
    files = image_files(folder)
    if not files:
        raise UserError(f"data.name: {argument!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    photos = [read_photo(path) for path in files]
    names = [path.relative_to(folder).as_posix() for path in files]
    x = cut_patches(photos, names, config.image_size or PATCH_SIDE, NUM_PATCHES, config.seed)
    return labelled(x, None, config.name, "images")

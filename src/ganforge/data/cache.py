"""Image folders decoded once: the stacked pixels are kept as a memory-mapped .npy keyed by a folder hash.

The folder hash is a SHA-256 over the sorted relative paths of the image files, each file's size and
mtime_ns, the colour mode and `data.image_size`, so a changed, added or removed file, or another size or
mode, is a new key. The cache is `folder-<first 16 hex digits>.npy`, uint8 (N, C, H, W), with a JSON sidecar
`folder-<16 hex>.json` holding the full hash and the shape; both are written to a temporary file in the
same folder and renamed into place, so a reader never sees half a file. A cache that cannot be read or
written never fails a run: it is rebuilt, or skipped with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ganforge.config import DataConfig

log = logging.getLogger("ganforge")

FORMAT = "ganforge-folder-cache-1"  # change when decoding changes in a way the hash does not show
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# A file changed this recently may change again within the same mtime tick, unseen by the hash (git calls
# this "racy"); such a folder is decoded but not cached, and the next run caches it.
RACY_SECONDS = 2.0


def image_files(root: Path) -> list[Path]:
    """Return the image files under `root` (searched recursively), sorted."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def default_cache_dir() -> Path:
    """Return ganforge's cache folder: $GANFORGE_CACHE, else ~/.cache/ganforge."""
    return Path(os.environ.get("GANFORGE_CACHE") or "~/.cache/ganforge").expanduser()


def folder_hash(
    root: Path,
    mode: str,  # "L" or "RGB"; "auto" when read from the files (their sizes and mtimes then pin it)
    image_size: int | None,  # data.image_size; None keeps the images' own size
    files: Sequence[Path] | None = None,  # the image files under root, as `image_files` lists them
) -> str:
    """Return the SHA-256 (64 hex digits) over the folder's files (path, size, mtime_ns), mode and size."""
    return _hash_and_newest(root, mode, image_size, files)[0]


def _hash_and_newest(
    root: Path, mode: str, image_size: int | None, files: Sequence[Path] | None
) -> tuple[str, int]:
    """Return (folder hash, newest mtime_ns among the files)."""
    root = Path(root)
    files = image_files(root) if files is None else files
    digest = hashlib.sha256(json.dumps([FORMAT, mode, image_size]).encode())
    newest = 0
    for path in files:
        stat = path.stat()
        newest = max(newest, stat.st_mtime_ns)
        # Paths are JSON strings, so no name (with newlines, say) can pass for two entries.
        entry = [path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns]
        digest.update(json.dumps(entry).encode() + b"\n")
    return digest.hexdigest(), newest


def cached_pixels(
    root: Path,
    files: Sequence[Path],
    mode: str,  # as for `folder_hash`
    config: DataConfig,  # reads cache, cache_dir and image_size
    decode: Callable[[], np.ndarray],  # decodes `files` to uint8 (N, C, H, W)
) -> np.ndarray:
    """Return the folder's uint8 (N, C, H, W) pixels: from the cache when it holds them, else `decode()`.

    A miss decodes and stores the result for the next run. The outcome and the hash are logged at INFO.
    """
    full_hash, newest = _hash_and_newest(root, mode, config.image_size, files)
    if not config.cache:
        log.info("folder cache: off (data.cache=false), hash %s", full_hash)
        return decode()
    directory = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    path = directory / f"folder-{full_hash[:16]}.npy"
    pixels = _read(path, full_hash, len(files), config.image_size)
    if pixels is not None:
        log.info("folder cache: hit, hash %s (%s)", full_hash, path)
        return pixels
    log.info("folder cache: miss, hash %s; decoding %d images", full_hash, len(files))
    pixels = decode()
    if newest > time.time_ns() - RACY_SECONDS * 1e9:
        log.info("folder cache: not written, files under %s changed in the last %g s", root, RACY_SECONDS)
        return pixels
    try:
        _write(path, full_hash, pixels)
    except OSError as exc:
        log.warning("folder cache: cannot write %s (%s); going on without a cache", path, exc)
    return pixels


def _read(path: Path, full_hash: str, count: int, image_size: int | None) -> np.ndarray | None:
    """Return the memory-mapped pixels at `path`, or None when missing or not what the sidecar promises."""
    sidecar = path.with_suffix(".json")
    try:
        if not (path.is_file() and sidecar.is_file()):
            return None
        meta = json.loads(sidecar.read_text())
        pixels = np.load(path, mmap_mode="r", allow_pickle=False)
        expected = tuple(meta["shape"])
        problems = [
            meta.get("format") != FORMAT or meta.get("hash") != full_hash,
            pixels.dtype != np.uint8 or pixels.shape != expected,
            pixels.ndim != 4 or pixels.shape[0] != count or pixels.shape[1] not in (1, 3),
            image_size is not None and pixels.shape[2:] != (image_size, image_size),
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:  # unreadable, truncated, or not our JSON
        log.warning("folder cache: %s is damaged (%s); decoding again", path, exc)
        return None
    if any(problems):
        log.warning("folder cache: %s does not match its folder; decoding again", path)
        return None
    return pixels


def _write(path: Path, full_hash: str, pixels: np.ndarray) -> None:
    """Write the pixels, then the sidecar that vouches for them, each atomically."""
    meta = {"format": FORMAT, "hash": full_hash, "shape": list(pixels.shape)}
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, lambda handle: np.save(handle, np.ascontiguousarray(pixels), allow_pickle=False))
    _write_atomic(path.with_suffix(".json"), lambda handle: handle.write(json.dumps(meta).encode()))


def _write_atomic(path: Path, write: Callable[[object], object]) -> None:
    # A unique temporary name: two runs filling the same cache at once each rename a whole file.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)

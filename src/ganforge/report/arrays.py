"""Samples as arrays on disk: the .npz that `ganforge sample` writes, streamed one batch at a time.

The file is what `np.savez_compressed(path, x=array)` writes (a zip archive with one deflated member
`x.npy`), but it is built incrementally: the .npy header for the final shape first, then each batch's bytes,
so a million samples need no more memory than a batch. It is written to a temporary file beside `path` and
renamed into place, so an interrupted write never leaves a half file under the final name.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch


def samples_array(samples: torch.Tensor, kind: str) -> np.ndarray:
    """Return samples as an .npz stores them: uint8 (N, C, H, W) images, float32 (N, ...) points."""
    from ganforge.sampling import to_uint8_images

    return to_uint8_images(samples) if kind == "images" else samples.to(torch.float32).numpy()


def write_npz(
    path: Path,
    batches: Iterable[np.ndarray],
    shape: tuple[int, ...],
    dtype: npt.DTypeLike,
    name: str = "x",
) -> Path:
    """Write the concatenation of `batches` as array `name` of `shape` and `dtype` into the .npz `path`.

    The batches must add up to exactly `shape` (rows along the first axis); otherwise nothing is written
    and ValueError is raised. Returns `path`.
    """
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    rows = 0
    try:
        with (
            zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive,
            # force_zip64: the member's size is unknown when its header is written and may pass 4 GiB.
            archive.open(f"{name}.npy", "w", force_zip64=True) as member,
        ):
            np.lib.format.write_array_header_1_0(member, header)
            for batch in batches:
                if batch.dtype != dtype or batch.shape[1:] != tuple(shape[1:]):
                    raise ValueError(
                        f"batch of {batch.dtype} {batch.shape} does not fit an array of {dtype} {shape}"
                    )
                rows += len(batch)
                if rows > shape[0]:
                    raise ValueError(f"more than the {shape[0]} rows announced")
                member.write(np.ascontiguousarray(batch).tobytes())
        if rows != shape[0]:
            raise ValueError(f"got {rows} rows, announced {shape[0]}")
        os.replace(partial, path)
    except BaseException:  # Ctrl-C included: no partial file stays behind
        partial.unlink(missing_ok=True)
        raise
    return path

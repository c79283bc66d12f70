"""`ganforge translate`: run a trained image-to-image generator (pix2pix, cyclegan) over image files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ganforge.errors import UserError


def translate(
    run: Annotated[
        Path, typer.Argument(help="pix2pix or cyclegan run folder (or its generator.safetensors)")
    ],
    in_dir: Annotated[
        Path, typer.Argument(help="Folder of source images (the generator's size and channels)")
    ],
    out_dir: Annotated[Path, typer.Argument(help="Folder the translations go to, as PNGs of the same names")],
    direction: Annotated[
        str, typer.Option(help="AtoB, or BtoA for a cyclegan run (which learns both directions)")
    ] = "AtoB",
    batch_size: Annotated[int, typer.Option(help="Images translated at a time")] = 64,
) -> int:
    """Translate every image in IN_DIR with a trained pix2pix or cyclegan generator; write PNGs to OUT_DIR."""
    from ganforge.translation import translate_folder

    if batch_size <= 0:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    written = translate_folder(run, in_dir, out_dir, direction=direction, batch_size=batch_size)
    print(f"wrote {len(written)} translated images to {out_dir}", file=sys.stderr)
    return 0

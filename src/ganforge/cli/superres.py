"""`ganforge superres`: upscale an image file with a trained super-resolution generator (recipe srgan)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def superres(
    model: Annotated[Path, typer.Argument(help="srgan run folder (or its generator.safetensors)")],
    in_path: Annotated[Path, typer.Argument(metavar="IN", help="Image file to upscale, any size")],
    out_path: Annotated[Path, typer.Argument(metavar="OUT", help="Where the upscaled image goes (PNG)")],
    scale: Annotated[
        int, typer.Option(help="Upscaling factor; must be the one the model was trained for")
    ] = 4,
    tile: Annotated[
        int, typer.Option(help="Input pixels per tile side (bounds memory; tiles join without seams)")
    ] = 128,
) -> int:
    """Upscale IN by --scale with a trained SRGAN/SRResNet generator and write OUT."""
    from ganforge.superres import upscale_file

    width, height = upscale_file(model, in_path, out_path, scale, tile=tile)
    print(f"wrote {out_path} ({width}x{height})", file=sys.stderr)
    return 0

"""`ganforge edit`: find attribute directions, move latents along them, interpolate; `ganforge directions`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ganforge.errors import UserError


def edit(
    run: Annotated[Path, typer.Argument(help="Run folder")],
    find: Annotated[
        str | None, typer.Option(help="Find and save the direction of an attribute, such as digit=7")
    ] = None,
    direction: Annotated[
        str | None, typer.Option(help="Draw rows of latents moved along this saved direction")
    ] = None,
    interpolate: Annotated[bool, typer.Option(help="Draw slerp paths between random latent pairs")] = False,
    amount: Annotated[float, typer.Option(help="--direction: each row goes from -amount to +amount")] = 3.0,
    n: Annotated[int, typer.Option("--n", help="Rows of the grid")] = 8,
    steps: Annotated[int, typer.Option(help="Columns of the grid: points along each row")] = 7,
    seed: Annotated[int, typer.Option(help="Seed of the latents")] = 0,
    psi: Annotated[float, typer.Option(help="Truncation: latents scaled by psi in (0, 1]")] = 1.0,
    out: Annotated[Path, typer.Option(help="Output .png grid (or .npz array x)")] = Path("edit.png"),
    samples: Annotated[int, typer.Option(help="--find: generated samples to label")] = 2000,
    method: Annotated[str, typer.Option(help="--find: probe (logistic regression) or mean")] = "probe",
) -> int:
    """Edit a trained generator's latents: --find ATTRIBUTE, --direction NAME, or --interpolate."""
    from ganforge import editing
    from ganforge.report.images import image_grid
    from ganforge.sampling import load_generator, to_uint8_images

    chosen = [
        flag
        for flag, given in (("--find", find), ("--direction", direction), ("--interpolate", interpolate))
        if given
    ]
    if len(chosen) != 1:
        raise UserError("edit: give exactly one of --find ATTRIBUTE, --direction NAME or --interpolate")
    if find is not None:
        found = editing.find_direction(run, find, n=samples, seed=seed, method=method)
        path = editing.save_direction(run, find, found)
        accuracy, having = found.info["classifier_accuracy"], found.info["with_attribute"]
        print(
            f"found direction {find!r} ({method}, {having} of {samples} samples have it; "
            f"classifier accuracy {accuracy:.3f} on held-out real data); saved to {path}",
            file=sys.stderr,
        )
        return 0
    editing.check_psi(psi, "--psi")
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    if steps < 2:
        raise UserError(f"--steps must be at least 2, got {steps}")
    if out.suffix.lower() not in (".png", ".npz"):
        raise UserError(f"--out: {str(out)!r} must end in .png or .npz")
    if direction is not None:
        editing.check_amount(amount, "--amount")
        vector = editing.get_direction(run, direction).vector
        sampler = load_generator(run)
        images = editing.edit_strip(sampler, vector, amount, n, steps, seed, psi)
    else:
        sampler = load_generator(run)
        images = editing.interpolation_strip(sampler, n, steps, seed, psi)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if sampler.data.kind == "images" and out.suffix.lower() == ".png":
            image_grid(to_uint8_images(images), columns=steps).save(out)
        else:
            from ganforge.report import save_samples

            save_samples(images, sampler.data.kind, out)
    except OSError as exc:
        raise UserError(f"--out: cannot write {str(out)!r} ({exc.strerror or exc})") from None
    print(f"wrote {n} rows of {steps} samples to {out}", file=sys.stderr)
    return 0


def directions(run: Annotated[Path, typer.Argument(help="Run folder")]) -> int:
    """List the attribute directions saved in a run folder, with how each was found."""
    from ganforge.editing import load_directions

    found = load_directions(run)
    if not found:
        print(f"no directions in {run}; find one with `ganforge edit {run} --find digit=7`", file=sys.stderr)
    for name, saved in found.items():
        info = saved.info
        print(
            f"{name:<16} {info.get('method', '?'):<6} samples {info.get('samples', '?'):<6} "
            f"classifier accuracy {info.get('classifier_accuracy', '?')}"
        )
    return 0

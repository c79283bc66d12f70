"""The subcommands. Each parses its flags, calls the Python API and prints a short summary."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from ganforge import api
from ganforge.config import preset_names, resolve
from ganforge.errors import UserError

Overrides = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: --set training.steps=500")
]
Nproc = Annotated[
    int | None,
    typer.Option(help="Train in N processes on this machine (DDP: gloo on CPU, NCCL on GPU)"),
]


def _launch(nproc: int, device: str, batch_size: int, run_dir: Path | None) -> int | None:
    """Start `nproc` training processes running this same command; None when one process will do.

    Inside a distributed run (torchrun, or the children started here) the flag is ignored.
    """
    from ganforge.engine import distributed

    if nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {nproc}")
    limit, what = distributed.process_limit(device)
    if nproc > limit:
        raise UserError(f"--nproc: {nproc} processes asked for, but this machine has {limit} {what}")
    if batch_size % nproc:
        raise UserError(f"--nproc: training.batch_size {batch_size} is not divisible by {nproc} processes")
    if nproc == 1 or "WORLD_SIZE" in os.environ:
        return None
    arguments = list(current_arguments())
    for i, argument in enumerate(arguments):  # drop --nproc N / --nproc=N; the children are one process each
        if argument == "--nproc":
            del arguments[i : i + 2]
            break
        if argument.startswith("--nproc="):
            del arguments[i]
            break
    named = "--out" in arguments or any(a.startswith("--out=") for a in arguments)
    if run_dir is not None and not named:
        arguments += ["--out", str(run_dir)]  # every process must write to the same folder
    return distributed.launch(arguments, nproc)


def current_arguments() -> list[str]:
    """The arguments this CLI was called with (set by `ganforge.cli.main`)."""
    from ganforge import cli

    return cli.ARGUMENTS


def _finish(result: api.TrainResult) -> int:
    if os.environ.get("RANK", "0") != "0":  # in a distributed run, rank 0 reports for all
        return 128 + (result.stop_signal or signal.SIGINT) if result.reason == "interrupted" else 0
    if result.reason == "interrupted":
        print(
            f"interrupted at step {result.step}; checkpoint written. "
            f"Continue with: ganforge resume {result.run_dir}",
            file=sys.stderr,
        )
        return 128 + (result.stop_signal or signal.SIGINT)
    if result.reason == "stopped":
        print(f"stopped by the monitors at step {result.step}: {result.stop_reason}", file=sys.stderr)
        return 0
    print(f"done: {result.step} steps in {result.run_dir}", file=sys.stderr)
    return 0


def train(
    config: Annotated[Path | None, typer.Argument(help="YAML config file (optional)")] = None,
    preset: Annotated[
        str | None, typer.Option(help="Start from a named preset (ganforge list presets)")
    ] = None,
    overrides: Overrides = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/RECIPE-DATA-TIME)")] = None,
    overwrite: Annotated[bool, typer.Option(help="Empty --out first if it holds an earlier run")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the resolved config and exit")] = False,
    nproc: Nproc = None,
) -> int:
    """Train a GAN from a preset and/or a YAML config, with --set overrides."""
    from ganforge.cli.progress import ProgressBar

    resolved = resolve(config, preset=preset, overrides=overrides or [])
    if dry_run:
        print(resolved.to_yaml(), end="")
        return 0
    if nproc is not None:
        folder = out if out is not None else api.default_run_dir(resolved)
        api.check_run_dir(folder, overwrite)  # said once here, not by every process
        code = _launch(nproc, resolved.training.device, resolved.training.batch_size, folder)
        if code is not None:
            return code
    return _finish(api.train(resolved, run_dir=out, overwrite=overwrite, callbacks=[ProgressBar()]))


def resume(
    run: Annotated[Path, typer.Argument(help="Run folder to continue")],
    steps: Annotated[
        int | None, typer.Option(help="Train to this many steps in all (default: the config's)")
    ] = None,
    nproc: Nproc = None,
) -> int:
    """Continue an interrupted run from its newest checkpoint, exactly as if it had not stopped."""
    from ganforge.cli.progress import ProgressBar

    if steps is not None and steps <= 0:
        raise UserError(f"--steps must be at least 1, got {steps}")
    if nproc is not None:
        if not (run / "config.yaml").is_file():
            raise UserError(f"run folder {str(run)!r} has no config.yaml (is it a ganforge run?)")
        config = resolve(run / "config.yaml")
        code = _launch(nproc, config.training.device, config.training.batch_size, None)
        if code is not None:
            return code
    return _finish(api.resume(run, steps=steps, callbacks=[ProgressBar()]))


def _check_reject(fraction: float | None) -> None:
    if fraction is not None and not 0 <= fraction < 0.9:
        raise UserError(f"--jacobian-reject must be in [0, 0.9), got {fraction}")


def sample(
    run: Annotated[Path, typer.Argument(help="Run folder (or a generator.safetensors file)")],
    n: Annotated[int, typer.Option("--n", help="Number of samples")] = 64,
    seed: Annotated[int | None, typer.Option(help="Seed: the same seed gives the same samples")] = None,
    out: Annotated[Path, typer.Option(help="Output file: .png (grid or scatter) or .npz (array x)")] = Path(
        "samples.png"
    ),
    jacobian_reject: Annotated[
        float | None,
        typer.Option(help="Drop this fraction of steepest latents (Jacobian truncation); default: the run's"),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="Autocast precision: fp32, bf16 or fp16 (CUDA only); default: the run's"),
    ] = None,
    label: Annotated[
        int | None,
        typer.Option(help="Class of every sample (conditional runs only); default: classes drawn uniformly"),
    ] = None,
    text: Annotated[
        str | None,
        typer.Option(
            help='Sentence every sample is drawn for (text-to-image runs only), e.g. "a red circle"'
        ),
    ] = None,
) -> int:
    """Draw samples from a trained generator into a PNG grid or an npz array (streamed: any --n)."""
    from ganforge.sampling import MAX_GRID_SAMPLES, PRECISIONS, load_generator

    if n <= 0:
        raise UserError(f"--n must be at least 1, got {n}")
    if out.suffix.lower() not in (".png", ".npz"):
        raise UserError(f"--out: {str(out)!r} must end in .png or .npz")
    if out.suffix.lower() == ".png" and n > MAX_GRID_SAMPLES:
        raise UserError(
            f"--n: a .png holds at most {MAX_GRID_SAMPLES} samples, got {n}; "
            "write them to an .npz instead (--out samples.npz)"
        )
    if out.is_dir():
        raise UserError(f"--out: {str(out)!r} is a folder; give a file name ending in .png or .npz")
    _check_reject(jacobian_reject)
    if precision is not None and precision not in PRECISIONS:
        raise UserError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    sampler = load_generator(run, jacobian_reject=jacobian_reject, precision=precision)
    if label is not None:
        classes = sampler.num_classes
        if classes is None:
            raise UserError(f"--label: {str(run)!r} is an unconditional run; it takes no labels")
        if not 0 <= label < classes:
            raise UserError(f"--label: class {label} is outside the trained classes 0..{classes - 1}")
    if text is not None:
        if label is not None:
            raise UserError("--text: give --label or --text, not both")
        if not sampler.takes_text:
            raise UserError(f"--text: {str(run)!r} has no text conditioning; it takes no text")
        if not text.strip():
            raise UserError("--text: the sentence is empty")
        if sampler.jacobian_reject:
            sampler.jacobian_reject = 0.0  # truncation is per class; a sentence has none
            print("--text: sampling without Jacobian truncation", file=sys.stderr)
    try:
        path = sampler.save(out, n, seed=seed, labels=label, text=text)
    except OSError as exc:
        raise UserError(f"--out: cannot write {str(out)!r} ({exc.strerror or exc})") from None
    print(f"wrote {n} samples to {path}", file=sys.stderr)
    return 0


def evaluate(
    run: Annotated[Path | None, typer.Argument(help="Run folder to score")] = None,
    metrics: Annotated[
        str, typer.Option(help="Comma-separated metrics (ganforge list metrics)")
    ] = "fid,kid,pr",
    n: Annotated[int, typer.Option("--n", help="Generated samples (and real ones, at most)")] = 10_000,
    extractor: Annotated[
        str | None, typer.Option(help="Feature extractor (default: lenet for digits, raw for points)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the samples and the real subset")] = 0,
    precision: Annotated[str, typer.Option(help="fp32 or bf16 (autocast) for the extractor")] = "fp32",
    extractor_path: Annotated[
        str | None, typer.Option(help="Weights file for the extractor (inception)")
    ] = None,
    rerun: Annotated[Path | None, typer.Option(help="Recompute a stored evaluation file and compare")] = None,
    jacobian_reject: Annotated[
        float | None,
        typer.Option(help="Drop this fraction of steepest latents (Jacobian truncation); default: the run's"),
    ] = None,
) -> int:
    """Score a trained generator offline; scores are stored with their manifests in RUN/evaluations/."""
    from ganforge.metrics.evaluate import evaluate as run_evaluation
    from ganforge.metrics.evaluate import rerun as rerun_evaluation

    if rerun is not None:
        checks = rerun_evaluation(rerun, progress=lambda line: print(line, file=sys.stderr))
        for check in checks:
            verdict = "same" if check.same else "DIFFERENT"
            stored, now = f"{check.stored:.8g}", f"{check.recomputed:.8g}"
            print(f"{check.label:<28} {check.key:<14} stored {stored}  now {now}  {verdict}")
        return 0 if all(check.same for check in checks) else 1
    if run is None:
        raise UserError("evaluate: give a run folder, or --rerun EVALUATION.json")
    if n <= 1:
        raise UserError(f"--n must be at least 2, got {n}")
    if precision not in ("fp32", "bf16"):
        raise UserError(f"--precision: expected fp32 or bf16, got {precision!r}")
    _check_reject(jacobian_reject)
    result = run_evaluation(
        run,
        metrics.split(","),
        n=n,
        extractor=extractor,
        seed=seed,
        precision=precision,
        extractor_path=extractor_path,
        jacobian_reject=jacobian_reject,
    )
    for score in result.scores:
        values = "  ".join(f"{key} {value:.5g}" for key, value in score.values.items())
        print(f"{score.label:<28} {values}")
    if result.path is not None:
        print(f"manifests written to {result.path}", file=sys.stderr)
    return 0


def report(run: Annotated[Path, typer.Argument(help="Run folder")]) -> int:
    """Write RUN/report.html: one self-contained page with samples, curves, metrics and manifests."""
    from ganforge.report import write_report

    print(f"wrote {write_report(run)}", file=sys.stderr)
    return 0


def list_entries(
    what: Annotated[
        str, typer.Argument(help="presets, datasets, nets, objectives, recipes, metrics, extractors")
    ] = "all",
) -> int:
    """List what can be named in a config: presets, datasets, nets, objectives, recipes."""
    from ganforge.data import DATASETS
    from ganforge.metrics.evaluate import EXTRACTORS, METRICS
    from ganforge.nets import NETS
    from ganforge.objectives import OBJECTIVES
    from ganforge.recipes import RECIPES

    registries = {
        "datasets": DATASETS,
        "nets": NETS,
        "objectives": OBJECTIVES,
        "recipes": RECIPES,
        "metrics": METRICS,
        "extractors": EXTRACTORS,
    }
    kinds = ["presets", *registries]
    if what not in (*kinds, "all"):
        raise UserError(f"list: unknown kind {what!r} (known: {', '.join(kinds)})")
    for kind in kinds if what == "all" else [what]:
        print(f"{kind}:")
        if kind == "presets":
            for name in preset_names():
                print(f"  {name}")
        else:
            registry = registries[kind]
            for name in registry.names():
                print(f"  {name:<22} {registry.describe(name)}")
    return 0

"""`ganforge tabular fit | sample | report`: synthetic tables from the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ganforge.errors import UserError

CHECKPOINT = "fit-checkpoint.safetensors"  # in --out while a fit runs
app = typer.Typer(no_args_is_help=True, help="Synthetic tables: fit a TabularGAN, sample rows, report.")


def _names(text: str | None) -> list[str] | str:
    if text is None or text.strip() == "auto":
        return "auto"
    return [name.strip() for name in text.split(",") if name.strip()]


@app.command("fit")
def fit(
    data: Annotated[
        str, typer.Argument(help="CSV/TSV/Parquet file, or a built-in: penguins, gbsg2, diamonds")
    ],
    out: Annotated[Path, typer.Option(help="Folder the model is saved to")],
    discrete: Annotated[
        str | None, typer.Option(help='Comma-separated categorical columns (default "auto")')
    ] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the rows")] = 300,
    batch_size: Annotated[
        int, typer.Option(help="Rows per step (a multiple of pac unless --dp-epsilon)")
    ] = 500,
    dp_epsilon: Annotated[
        float | None, typer.Option(help="Train with differential privacy to this epsilon (needs opacus)")
    ] = None,
    dp_delta: Annotated[
        float | None, typer.Option(help="The delta of the DP budget (default 1/(10 n))")
    ] = None,
    refine_levels: Annotated[
        str,
        typer.Option(
            help="Draw the categorical columns of samples again from a classifier chain given the numbers: "
            "auto (tables of 5,000 rows or more), on or off"
        ),
    ] = "auto",
    seed: Annotated[int, typer.Option(help="random_state: the same seed gives the same model")] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch threads (default: torch's)")] = None,
    resume: Annotated[
        bool, typer.Option(help="Go on from the checkpoint an interrupted fit left in --out")
    ] = False,
) -> int:
    """Fit a TabularGAN on DATA and save it to --out.

    While fitting, the state is written to OUT/fit-checkpoint.safetensors every minute and on Ctrl-C or
    SIGTERM (exit code 130); the same command with --resume goes on from it and gives the same model.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ganforge.tabular import FitInterrupted, TabularGAN  # noqa: PLC0415

    refine = {"auto": None, "on": True, "off": False}
    if refine_levels not in refine:
        raise UserError(f"--refine-levels: give auto, on or off, not {refine_levels!r}")
    model = TabularGAN(
        refine_levels=refine[refine_levels],
        epochs=epochs,
        batch_size=batch_size,
        dp_epsilon=dp_epsilon,
        dp_delta=dp_delta,
        random_state=seed,
        threads=threads,
    )
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]epoch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = progress.add_task("fit", total=epochs, losses="")

    def on_epoch(epoch: int, total: int, losses: dict[str, float]) -> None:
        text = f"D {losses['critic']:+.3f}  G {losses['generator']:+.3f}"
        progress.update(task, completed=epoch, losses=text)

    checkpoint: Path | None = out / CHECKPOINT
    if dp_epsilon is not None:
        if resume:
            raise UserError("--resume: a private fit (--dp-epsilon) is not checkpointed, so it cannot resume")
        checkpoint = None
    elif checkpoint.exists() and not resume:
        raise UserError(f"--out: {checkpoint} is left from an interrupted fit; add --resume, or delete it")
    try:
        with progress:
            model.fit(
                data,
                discrete_columns=_names(discrete),
                on_epoch=on_epoch,
                checkpoint=checkpoint,
                resume=resume,
            )
    except FitInterrupted as stop:
        print(
            f"interrupted after epoch {stop.epoch} of {stop.epochs}; state saved to {stop.path}; "
            "run the same command with --resume to go on",
            file=sys.stderr,
        )
        return 130
    model.save(out)
    line = f"fitted {model.n_rows_} rows x {len(model.columns_)} columns in {model.fit_seconds_:.1f} s"
    if model.refined_columns_:
        line += f"; levels drawn from the numbers: {', '.join(model.refined_columns_)}"
    if getattr(model, "dp_epsilon_spent_", None) is not None:
        line += (
            f"; differential privacy: epsilon {model.dp_epsilon_spent_:.2f} at delta {model.dp_delta_:.2g}"
        )
    print(f"{line}; saved to {out}", file=sys.stderr)
    return 0


def _parse_condition(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UserError(f"--condition: expected COLUMN=VALUE, got {text!r}")
    return name.strip(), value


@app.command("sample")
def sample(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="Folder written by `tabular fit`")],
    out: Annotated[Path, typer.Option(help="Where the rows go: .csv or .parquet")],
    n: Annotated[int, typer.Option("--n", help="How many rows")] = 1000,
    condition: Annotated[
        list[str] | None, typer.Option(help="COLUMN=VALUE; only rows holding it (repeatable)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: from the model's)")] = None,
) -> int:
    """Sample --n rows from a fitted model into --out."""
    from ganforge.tabular import TabularGAN  # noqa: PLC0415

    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise UserError(f"--out: {out} must end in .csv or .parquet")
    conditions = dict(_parse_condition(text) for text in condition or [])
    rows = TabularGAN.load(model_dir).sample(n, conditions=conditions, random_state=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        rows.to_csv(out, index=False)
    else:
        rows.to_parquet(out, index=False)
    print(f"wrote {len(rows)} rows to {out}", file=sys.stderr)
    return 0


@app.command("report")
def report(
    model_dir: Annotated[Path, typer.Argument(metavar="MODEL", help="Folder written by `tabular fit`")],
    real: Annotated[str, typer.Option(help="The real table (file or built-in name) to compare with")],
    holdout: Annotated[
        str | None, typer.Option(help="Real rows kept out of training (for privacy); default: none")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Column to predict for machine-learning efficacy (default: none)")
    ] = None,
    n: Annotated[
        int | None, typer.Option("--n", help="Synthetic rows to draw (default: as many as real)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="HTML file (default: MODEL/report.html)")] = None,
) -> int:
    """Compare a fitted model's rows with the real table; write an HTML report with plots."""
    from ganforge.report.tabular import write_tabular_report  # noqa: PLC0415

    path = write_tabular_report(model_dir, real, holdout=holdout, target=target, n=n, out=out)
    print(f"wrote {path}", file=sys.stderr)
    return 0

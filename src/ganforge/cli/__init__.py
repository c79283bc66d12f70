"""The `ganforge` command: thin subcommands that parse, call the API and print.

User mistakes (UserError, bad flags) print one line to stderr and exit with code 2, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from ganforge.cli import commands, edit, superres, tabular, translate
from ganforge.engine import distributed
from ganforge.errors import TrainingDiverged, UserError

app = typer.Typer(
    name="ganforge",
    help="Train, evaluate and use Generative Adversarial Networks.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("train")(commands.train)
app.command("resume")(commands.resume)
app.command("sample")(commands.sample)
app.command("list")(commands.list_entries)
app.command("evaluate")(commands.evaluate)
app.command("report")(commands.report)
app.command("edit")(edit.edit)
app.command("directions")(edit.directions)
app.command("translate")(translate.translate)
app.command("superres")(superres.superres)
app.add_typer(tabular.app, name="tabular")

# Typer raises click's exception classes (vendored in recent Typer); reach them through a public name.
_CLICK = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
UsageError = _CLICK["UsageError"]


ARGUMENTS: list[str] = []  # the arguments of the running command (`--nproc` starts copies of it)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 user error or divergence, 130/143 interrupted)."""
    global ARGUMENTS
    ARGUMENTS = list(argv) if argv is not None else sys.argv[1:]
    # In a distributed run only rank 0 speaks; the others would repeat its every line.
    quiet = os.environ.get("RANK", "0") != "0"
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr
    )
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        result = app(args=argv, standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `ganforge` alone prints the help
            print(exc.format_message())
            return 0
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("error: aborted", file=sys.stderr)
        return 130
    except (UserError, TrainingDiverged) as exc:
        if not quiet:  # rank 0 says it; another rank speaks only of trouble of its own
            print(f"error: {exc}", file=sys.stderr)
        elif isinstance(exc, TrainingDiverged) or os.environ.get("GANFORGE_DEBUG"):
            print(f"error (rank {os.environ['RANK']}): {exc}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


def entry() -> None:
    code = main()
    if distributed.joined():  # this process took part in a distributed run (torchrun or --nproc)
        distributed.end_process(code)
    sys.exit(code)

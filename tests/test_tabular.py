"""TabularGAN: column transforms, reproducibility, conditions, saved files, privacy, CLI, quality."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from ganforge.data.tables import load_table
from ganforge.errors import UserError
from ganforge.metrics.tabular import ks_statistic, quality
from ganforge.tabular import FitInterrupted, TabularGAN
from ganforge.tabular.columns import (
    CategoricalColumn,
    NumericColumn,
    Span,
    TableTransformer,
    _explained,
    column_kinds,
)
from ganforge.tabular.nets import SpanSoftmax
from ganforge.tabular.trends import Trends

FAST = {"epochs": 3, "batch_size": 50, "generator_dim": (32,), "discriminator_dim": (32,), "threads": 1}


def mixed_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Every column kind, with missing values in most of them."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "height": np.concatenate([rng.normal(150, 5, n // 2), rng.normal(190, 3, n - n // 2)]),
            "count": rng.integers(0, 500, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "flag": rng.random(n) < 0.3,
            "when": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "score": rng.normal(0, 1, n),
        }
    )
    table.loc[rng.random(n) < 0.1, "score"] = np.nan
    table["colour"] = table["colour"].astype(object)
    table.loc[rng.random(n) < 0.05, "colour"] = None
    return table


def test_every_column_kind_round_trips_through_the_transform() -> None:
    table = mixed_table()
    rng = np.random.default_rng(0)
    transformer = TableTransformer.fit(table, column_kinds(table, "auto"), 500, rng)
    assert transformer.kinds == {
        "height": "continuous",
        "count": "integer",
        "colour": "categorical",
        "flag": "boolean",
        "when": "datetime",
        "score": "continuous",
    }
    back = transformer.decode(*transformer.encode(table, rng), rng)
    np.testing.assert_allclose(back["height"], table["height"], rtol=1e-5)
    assert back["count"].dtype == table["count"].dtype and (back["count"] == table["count"]).all()
    assert back["colour"].isna().sum() == table["colour"].isna().sum()
    assert (back["colour"].fillna("-") == table["colour"].fillna("-")).all()
    assert back["flag"].dtype == bool and (back["flag"] == table["flag"]).all()
    assert (back["when"] == table["when"]).all()
    assert (back["score"].isna() == table["score"].isna()).all()
    np.testing.assert_allclose(back["score"].dropna(), table["score"].dropna(), rtol=1e-4, atol=1e-6)
    # the transform saves and loads as JSON
    again = TableTransformer.from_json(json.loads(json.dumps(transformer.to_json())))
    assert again.kinds == transformer.kinds and again.width == transformer.width


def test_the_mixture_finds_both_modes_and_missing_is_a_mode_of_its_own() -> None:
    table = mixed_table()
    transformer = TableTransformer.fit(table, column_kinds(table, "auto"), 500, np.random.default_rng(0))
    height, score = transformer.columns[0], transformer.columns[5]
    assert any(abs(m - 150) < 3 for m in height.means) and any(abs(m - 190) < 3 for m in height.means)
    assert score.has_missing and score.n_modes == len(score.means) + 1


def test_a_wide_categorical_is_capped_and_its_rare_levels_still_come_back() -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {"id": [f"user{i}" for i in rng.integers(0, 3000, 4000)], "x": rng.normal(size=4000)}
    )
    model = TabularGAN(max_categories=50, random_state=0, **FAST).fit(table, discrete_columns=["id"])
    column = model.transformer_.columns[0]
    assert len(column.levels) == 50 and column.levels[-1] == column.OTHER and len(column.pooled) > 2000
    rows = model.sample(2000)
    assert set(rows["id"]) <= set(table["id"])
    assert len(set(rows["id"]) - set(column.levels)) > 20  # pooled levels are drawn too


def test_fit_and_sample_repeat_exactly_with_random_state_and_leave_global_state_alone() -> None:
    table = mixed_table()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = TabularGAN(random_state=7, **FAST).fit(table).sample(200)
    after = torch.rand(1)
    second = TabularGAN(random_state=7, **FAST).fit(table).sample(200)
    pd.testing.assert_frame_equal(first, second)
    assert torch.equal(before, after)  # fitting and sampling used their own random streams
    other = TabularGAN(random_state=8, **FAST).fit(table).sample(200)
    assert not first.equals(other)


def test_samples_keep_kinds_ranges_and_integers() -> None:
    table = mixed_table()
    rows = TabularGAN(random_state=0, **FAST).fit(table).sample(500)
    assert list(rows.columns) == list(table.columns)
    assert rows["height"].between(table["height"].min(), table["height"].max()).all()
    assert (rows["count"] == rows["count"].round()).all()
    assert rows["count"].between(table["count"].min(), table["count"].max()).all()
    assert rows["when"].dtype == table["when"].dtype and (rows["when"] == rows["when"].dt.normalize()).all()
    assert set(rows["colour"].dropna()) <= {"red", "green", "blue"}


def test_conditional_sampling_returns_only_the_asked_values() -> None:
    model = TabularGAN(random_state=0, **FAST).fit(mixed_table())
    rows = model.sample(100, conditions={"colour": "green", "flag": True})
    assert len(rows) == 100 and (rows["colour"] == "green").all() and rows["flag"].all()
    with pytest.raises(UserError, match="no column 'shade'"):
        model.sample(10, conditions={"shade": "green"})
    with pytest.raises(UserError, match="no value 'purple'"):
        model.sample(10, conditions={"colour": "purple"})
    for bad in (0, -5):
        with pytest.raises(UserError, match="at least 1 row"):
            model.sample(bad)


def test_saved_model_loads_samples_the_same_and_holds_no_training_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        {"a": rng.normal(size=200), "b": rng.normal(size=200) * 1000, "c": rng.integers(0, 3, 200)}
    )
    model = TabularGAN(random_state=0, **FAST).fit(table)
    model.save(tmp_path / "m")
    loaded = TabularGAN.load(tmp_path / "m")
    pd.testing.assert_frame_equal(model.sample(100, random_state=3), loaded.sample(100, random_state=3))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]
    text = (tmp_path / "m" / "model.json").read_text()
    blob = (tmp_path / "m" / "model.safetensors").read_bytes()
    stored = set()
    for column in ("a", "b"):
        for value in table[column]:
            # float32 bytes are left out: among ~10^5 float32 weights one can match a value by chance
            if repr(float(value)) in text or struct.pack("<d", value) in blob:
                stored.add(float(value))
    bounds = {float(table[c].min()) for c in ("a", "b")} | {float(table[c].max()) for c in ("a", "b")}
    assert stored <= bounds  # only each column's observed minimum and maximum, never a row


def test_private_fit_spends_no_more_than_its_budget() -> None:
    model = TabularGAN(dp_epsilon=2.0, epochs=4, batch_size=64, generator_dim=(32,), discriminator_dim=(32,))
    model.random_state, model.threads = 0, 1
    model.fit(load_table("penguins"))
    assert 0 < model.dp_epsilon_spent_ <= 2.0
    assert model.dp_delta_ == pytest.approx(1 / (10 * 344))
    assert len(model.sample(50)) == 50


def test_bad_settings_and_tables_raise_one_line() -> None:
    with pytest.raises(UserError, match="multiple of pac"):
        TabularGAN(batch_size=55, **{k: v for k, v in FAST.items() if k != "batch_size"}).fit(mixed_table())
    with pytest.raises(UserError, match="every value is missing"):
        TabularGAN(**FAST).fit(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [np.nan] * 3}))
    with pytest.raises(UserError, match="mixes numbers and text"):
        TabularGAN(**FAST).fit(pd.DataFrame({"a": [1, "x", 3, "y"], "b": [1.0, 2.0, 3.0, 4.0]}))
    with pytest.raises(UserError, match="discrete_columns: no column 'zzz'"):
        TabularGAN(**FAST).fit(mixed_table(), discrete_columns=["zzz"])
    with pytest.raises(UserError, match="not fitted"):
        TabularGAN().sample(5)


def ganforge(*argv: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ganforge", "tabular", *map(str, argv)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_fit_sample_report_and_one_line_errors(tmp_path: Path) -> None:
    table = mixed_table()
    train, holdout = table.iloc[:240], table.iloc[240:]
    train.to_csv(tmp_path / "train.csv", index=False)
    holdout.to_parquet(tmp_path / "holdout.parquet", index=False)
    fit = ganforge(
        "fit", "train.csv", "--out", "model", "--epochs", "3", "--threads", "1", "--refine-levels", "on",
        cwd=tmp_path,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert "fitted 240 rows x 6 columns" in fit.stderr
    assert "levels drawn from the numbers: colour, flag" in fit.stderr
    private = ganforge(
        "fit",
        "train.csv",
        "--out",
        "private",
        "--epochs",
        "2",
        "--dp-epsilon",
        "3",
        "--threads",
        "1",
        cwd=tmp_path,
    )
    assert private.returncode == 0, private.stderr
    spent = float(private.stderr.split("differential privacy: epsilon ")[1].split()[0])
    assert 0 < spent <= 3
    sample = ganforge(
        "sample", "model", "--n", "30", "--out", "s.csv", "--condition", "colour=red", cwd=tmp_path
    )
    assert sample.returncode == 0, sample.stderr
    rows = pd.read_csv(tmp_path / "s.csv")
    assert len(rows) == 30 and (rows["colour"] == "red").all()
    report = ganforge(
        "report", "model", "--real", "train.csv", "--holdout", "holdout.parquet", "--target", "colour",
        cwd=tmp_path,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "model" / "report.html").read_text()
    for heading in (
        "Quality",
        "Columns: real vs synthetic",
        "Privacy",
        "membership-inference AUC",
        "macro F1",
    ):
        assert heading in page
    assert page.count("<img") == 2

    (tmp_path / "one.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "picture.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe")
    pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan]}).to_csv(tmp_path / "nan.csv", index=False)
    (tmp_path / "mixed.csv").write_text("a,b\n1,x\n2,3\n3,4\n4,5\n")
    cases = [
        (("fit", "one.csv", "--out", "x"), "one.csv"),
        (("fit", "empty.csv", "--out", "x"), "empty.csv"),
        (("fit", "picture.csv", "--out", "x"), "picture.csv"),
        (("fit", "nan.csv", "--out", "x"), "every value is missing"),
        (("fit", "mixed.csv", "--out", "x"), "column 'b' mixes numbers and text (75% numbers, also 'x')"),
        (("fit", "train.csv", "--out", "x", "--refine-levels", "maybe"), "--refine-levels: give auto, on"),
        (("sample", "model", "--n", "0", "--out", "s.csv"), "at least 1 row"),
        (("sample", "model", "--out", "s.csv", "--condition", "shade=red"), "no column 'shade'"),
        (("sample", "model", "--out", "s.csv", "--condition", "colour=purple"), "no value 'purple'"),
        (("sample", "nowhere", "--out", "s.csv"), "not a saved TabularGAN"),
    ]
    for argv, words in cases:
        result = ganforge(*argv, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and words in lines[0], (argv, result.stderr)


@pytest.mark.slow
def test_a_ci_sized_fit_on_penguins_beats_the_column_shuffled_baseline_on_pair_trends() -> None:
    real = load_table("penguins")
    model = TabularGAN(epochs=600, batch_size=50, random_state=0, threads=1).fit(real)
    synthetic = quality(real, model.sample(len(real)), model.kinds_)
    rng = np.random.default_rng(0)
    shuffled = real.apply(lambda column: rng.permutation(column.to_numpy()))
    baseline = quality(real, shuffled, model.kinds_)
    assert baseline.column_shapes == pytest.approx(1.0)  # a shuffle keeps every column's values...
    assert synthetic.pair_trends > baseline.pair_trends + 0.02  # ...but only the GAN keeps their pairs


def test_span_softmax_equals_a_softmax_per_span() -> None:
    spans = [Span("a", "tanh", 1), Span("a", "softmax", 3), Span("b", "softmax", 5), Span("c", "tanh", 1)]
    spans.append(Span("d", "softmax", 2))
    block = SpanSoftmax(spans)
    logits = torch.randn(6, 12, dtype=torch.float64) * 20  # large logits: the shift by each span's maximum
    soft = logits[:, block.soft]
    pieces = [logits[:, 1:4], logits[:, 4:9], logits[:, 10:12]]
    torch.testing.assert_close(block.softmax(soft), torch.cat([p.softmax(1) for p in pieces], 1))
    torch.testing.assert_close(block.log_softmax(soft), torch.cat([p.log_softmax(1) for p in pieces], 1))
    torch.manual_seed(0)
    rows = block.activate(logits, tau=0.2)
    torch.testing.assert_close(rows[:, [0, 9]], torch.tanh(logits[:, [0, 9]]))
    for start, stop in ((1, 4), (4, 9), (10, 12)):  # each span is a probability vector
        torch.testing.assert_close(rows[:, start:stop].sum(1), torch.ones(6, dtype=torch.float64))


def test_the_marginal_map_gives_the_mixture_shape_and_keeps_every_rank() -> None:
    rng = np.random.default_rng(0)
    real = pd.Series(np.concatenate([rng.normal(0, 1, 3000), rng.normal(8, 1, 3000)]), name="x")
    column = NumericColumn("x", "continuous", "float64")
    column.fit(real, rng)
    generated = rng.normal(4, 2, 20_000)  # a generator that smeared both modes into one
    generated[:100] = np.nan  # missing values stay missing
    column.fit_marginal_map(generated)
    mapped = column.finish(generated)
    assert np.isnan(mapped[:100]).all()
    present, mapped_present = generated[100:], mapped[100:]
    order = np.argsort(present)
    assert (np.diff(mapped_present[order]) >= 0).all()  # monotone: every row keeps its rank
    assert ks_statistic(real.to_numpy(), mapped_present) < 0.03 < 0.2 < ks_statistic(real.to_numpy(), present)


def test_a_marginal_map_is_kept_only_where_it_brings_the_shape_closer() -> None:
    rng = np.random.default_rng(0)
    # "spiky": an integer column that is 0 for 60 % of rows with a long tail; a mixture smooths the spike
    spiky = np.where(rng.random(2000) < 0.6, 0, rng.lognormal(4, 1.5, 2000).round()).astype(int)
    table = pd.DataFrame({"smooth": rng.normal(0, 1, 2000), "spiky": spiky})
    transformer = TableTransformer.fit(table, column_kinds(table, "auto"), 500, rng)
    scalars, codes = transformer.encode(table, rng)
    # generated rows: "smooth" squashed towards its mean (a map helps); "spiky" exactly the data (none can)
    scalars[:, 0] *= 0.5
    kept = transformer.fit_marginal_maps(table, scalars, codes)
    assert kept == ["smooth"]
    assert transformer.columns[0].source and not transformer.columns[1].source


def test_matching_marginals_brings_a_brief_fit_closer_to_every_numeric_column() -> None:
    table = mixed_table(600)
    kinds = TableTransformer.fit(table, column_kinds(table, "auto"), 500, np.random.default_rng(0)).kinds
    shapes = {}
    for match in (False, True):
        model = TabularGAN(random_state=0, match_marginals=match, **FAST).fit(table)
        shapes[match] = quality(table, model.sample(600), kinds).per_column
    numeric = [name for name, kind in kinds.items() if kind in ("continuous", "integer", "datetime")]
    assert model.mapped_columns_  # the brief fit leaves shapes the maps can improve
    assert sum(shapes[True][n] for n in numeric) > sum(shapes[False][n] for n in numeric) + 0.1


def test_a_private_fit_keeps_every_marginal_map_without_consulting_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def compare_with_data(*_: object) -> float:
        raise AssertionError("the private fit compared generated numbers with the training data")

    monkeypatch.setattr("ganforge.tabular.columns.ks_statistic", compare_with_data)
    model = TabularGAN(dp_epsilon=5.0, epochs=2, batch_size=64, generator_dim=(32,), discriminator_dim=(32,))
    model.random_state, model.threads = 0, 1
    table = load_table("penguins")
    model.fit(table)
    numeric = [name for name, kind in model.kinds_.items() if kind in ("continuous", "integer")]
    assert model.mapped_columns_ == numeric
    assert model.level_maps_ == {}  # maps within levels need the data: a private fit has none
    assert model.trends_.names == []  # ... and so do trends (penguins' measurements get four outside DP)
    assert TabularGAN.load(model.save(tmp_path / "m")).mapped_columns_ == numeric


def test_an_interrupted_fit_resumes_to_the_same_model(tmp_path: Path) -> None:
    table, settings = mixed_table(), dict(FAST, epochs=6)
    whole = TabularGAN(random_state=3, **settings).fit(table)
    checkpoint = tmp_path / "fit.safetensors"

    def ctrl_c_after_epoch_2(epoch: int, _epochs: int, _losses: dict[str, float]) -> None:
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real signal: the fit's handler finishes the epoch first

    stopped = TabularGAN(random_state=3, **settings)
    with pytest.raises(FitInterrupted, match="after epoch 2 of 6") as caught:
        stopped.fit(table, on_epoch=ctrl_c_after_epoch_2, checkpoint=checkpoint)
    assert caught.value.epoch == 2 and checkpoint.is_file()
    with pytest.raises(UserError, match="not fitted yet"):
        stopped.sample(5)
    with pytest.raises(UserError, match="other data or settings"):
        TabularGAN(random_state=3, **dict(settings, lr=1e-3)).fit(table, checkpoint=checkpoint, resume=True)
    with pytest.raises(UserError, match="other data or settings"):
        TabularGAN(random_state=3, **settings).fit(table.iloc[1:], checkpoint=checkpoint, resume=True)
    resumed = TabularGAN(random_state=3, **settings).fit(table, checkpoint=checkpoint, resume=True)
    assert resumed.history_ == whole.history_ and len(resumed.history_) == 6
    for name, weight in whole.generator_.state_dict().items():
        assert torch.equal(weight, resumed.generator_.state_dict()[name]), name
    pd.testing.assert_frame_equal(whole.sample(200), resumed.sample(200))
    assert not checkpoint.exists()  # a finished fit leaves only the model
    with pytest.raises(UserError, match="no checkpoint at"):
        TabularGAN(random_state=3, **settings).fit(table, checkpoint=checkpoint, resume=True)


def test_cli_fit_stops_with_130_and_resumes_with_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ganforge.cli import main
    from ganforge.tabular.resume import FitCheckpoint

    mixed_table().to_csv(tmp_path / "t.csv", index=False)
    argv = ["tabular", "fit", str(tmp_path / "t.csv"), "--epochs", "5", "--batch-size", "50"]
    argv += ["--threads", "1"]
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    after_epoch = FitCheckpoint.after_epoch

    def signal_at_epoch_3(self: FitCheckpoint, epoch: int, epochs: int, state: Any) -> None:
        if epoch == 3:
            self.stop_signal = signal.SIGTERM  # as the handler does when SIGTERM arrives
        after_epoch(self, epoch, epochs, state)

    monkeypatch.setattr(FitCheckpoint, "after_epoch", signal_at_epoch_3)
    out = tmp_path / "model"
    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 130
    assert "interrupted after epoch 3 of 5" in capsys.readouterr().err
    monkeypatch.setattr(FitCheckpoint, "after_epoch", after_epoch)
    assert main([*argv, "--out", str(out)]) == 2  # the checkpoint is there: ask for --resume
    assert "add --resume" in capsys.readouterr().err
    assert main([*argv, "--out", str(out), "--dp-epsilon", "2", "--resume"]) == 2
    assert main([*argv, "--out", str(out), "--resume"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    whole, resumed = TabularGAN.load(tmp_path / "whole"), TabularGAN.load(out)
    pd.testing.assert_frame_equal(whole.sample(100), resumed.sample(100))


def test_sampling_in_chunks_gives_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    import ganforge.tabular.model as tabular_model

    model = TabularGAN(random_state=0, **FAST).fit(mixed_table())
    whole = model.sample(700, random_state=1)
    monkeypatch.setattr(tabular_model, "GENERATE_CHUNK", 64)  # many forward passes and activations, not one
    pd.testing.assert_frame_equal(whole, model.sample(700, random_state=1))


def grouped_table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """`size` depends strongly on `group` (its mean and spread differ by level); `noise` does not."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    centre, spread = {"a": 0.0, "b": 6.0, "c": 12.0}, {"a": 0.5, "b": 2.0, "c": 1.0}
    size = np.array([rng.normal(centre[g], spread[g]) for g in group])
    return pd.DataFrame({"group": group, "size": size, "noise": rng.normal(0, 1, n)})


def test_explained_variance_is_one_for_group_means_and_near_zero_for_random_groups() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, 5000)
    assert _explained(codes * 10.0, codes) == pytest.approx(1.0)
    assert abs(_explained(rng.normal(size=5000), codes)) < 0.005
    assert _explained(np.ones(10), codes[:10]) == 0.0  # no variance: nothing to explain


def test_level_maps_give_each_level_of_the_parent_its_own_shape() -> None:
    table = grouped_table()
    rng = np.random.default_rng(0)
    transformer = TableTransformer.fit(table, column_kinds(table, "auto"), 500, rng)
    scalars, codes = transformer.encode(table, rng)
    size = transformer.columns[1]
    # generated rows: every level's sizes smeared three times as wide around the level's mean
    real = table["size"].to_numpy()
    means = table.groupby("group")["size"].transform("mean").to_numpy()
    smeared = pd.Series(means + 3 * (real - means), name="size")
    scalars[:, 0], codes[:, 1] = size.encode(smeared, rng)
    kept = transformer.fit_marginal_maps(table, scalars, codes, rng=np.random.default_rng(1))
    assert transformer.level_mapped() == {"size": "group"}  # `noise` has no parent
    assert size.level_codes == [0, 1, 2] and "size" in kept
    rows = transformer.decode(scalars, codes, np.random.default_rng(2))
    made = size.values(scalars[:, 0], codes[:, 1])  # the generated numbers before any map
    for level in "abc":
        ours, theirs = rows.loc[table["group"] == level, "size"], table.loc[table["group"] == level, "size"]
        assert ks_statistic(theirs.to_numpy(), ours.to_numpy()) < 0.08
        assert ours.std() == pytest.approx(theirs.std(), rel=0.1)  # not three times as wide any more
        order = np.argsort(made[(table["group"] == level).to_numpy()])
        assert (np.diff(ours.to_numpy()[order]) >= 0).all()  # within a level every row keeps its rank
    size.level_codes = []  # without the level maps the marginal map alone cannot narrow the levels
    plain = transformer.decode(scalars, codes, np.random.default_rng(2))
    assert plain.loc[table["group"] == "a", "size"].std() > 2 * table.loc[table["group"] == "a", "size"].std()


def test_level_maps_bring_a_brief_fit_closer_within_levels_and_are_saved_without_training_rows(
    tmp_path: Path,
) -> None:
    table = grouped_table()
    fitted = {}
    for by_level in (False, True):
        # no trends: the group means alone explain most of `size`, so it would be learnt as a residual
        model = TabularGAN(random_state=0, match_by_level=by_level, trends=False, **FAST)
        fitted[by_level] = model.fit(table)
    assert fitted[False].level_maps_ == {} and fitted[True].level_maps_ == {"size": "group"}
    distance = {}
    for by_level, model in fitted.items():
        rows = model.sample(3000, random_state=1)
        distance[by_level] = [
            ks_statistic(
                table.loc[table["group"] == g, "size"].to_numpy(), rows.loc[rows["group"] == g, "size"]
            )
            for g in "abc"
        ]
    assert sum(distance[True]) < 0.5 * sum(distance[False])
    model = fitted[True]
    loaded = TabularGAN.load(model.save(tmp_path / "m"))
    assert loaded.level_maps_ == model.level_maps_
    pd.testing.assert_frame_equal(model.sample(500, random_state=3), loaded.sample(500, random_state=3))
    text = (tmp_path / "m" / "model.json").read_text()
    stored = {float(v) for v in table["size"] if repr(float(v)) in text}
    assert stored <= {float(table["size"].min()), float(table["size"].max())}
    rows = loaded.sample(200, conditions={"group": "c"}, random_state=4)
    assert (rows["group"] == "c").all() and rows["size"].mean() > 9  # a condition meets its level's map


def _softmax_share(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)).mean(axis=0)


def test_level_offsets_give_each_level_its_frequency_and_stay_bounded() -> None:
    frequencies = [0.4, 0.3, 0.2, 0.1]
    column = CategoricalColumn("c", "categorical", "object", ["a", "b", "c", "d"], frequencies)
    logits = np.random.default_rng(0).normal(0, 1.5, (4000, 4)) + [0.0, 1.0, 0.0, -1.0]
    assert np.abs(_softmax_share(logits) - frequencies).max() > 0.1  # the "generator" is off
    column.fit_offsets(logits)
    np.testing.assert_allclose(_softmax_share(logits + column.offsets), frequencies, atol=1e-3)
    # a level the generator never makes cannot be reached: its offset stops at the limit, and the others get
    # at least their frequencies
    logits[:, 3] = -100.0
    column.fit_offsets(logits)
    assert np.isfinite(column.offsets).all() and np.abs(column.offsets).max() <= 10.0
    share = _softmax_share(logits + column.offsets)
    assert share[3] < 0.01 and (share[:3] > np.array(frequencies[:3]) - 0.01).all()


def test_matching_frequencies_brings_a_brief_fit_to_the_levels_frequencies(tmp_path: Path) -> None:
    table = mixed_table(600)
    categorical = ["colour", "flag"]

    def distance(rows: pd.DataFrame) -> float:  # total variation, summed over the categorical columns
        total = 0.0
        for name in categorical:
            real = table[name].astype(str).value_counts(normalize=True)
            made = rows[name].astype(str).value_counts(normalize=True)
            total += 0.5 * real.sub(made, fill_value=0).abs().sum()
        return total

    fitted = {
        match: TabularGAN(random_state=0, match_frequencies=match, **FAST).fit(table)
        for match in (False, True)
    }
    distances = {match: distance(model.sample(4000, random_state=1)) for match, model in fitted.items()}
    assert distances[True] < 0.05 < distances[False]
    model = fitted[True]
    loaded = TabularGAN.load(model.save(tmp_path / "m"))
    assert set(model.level_offsets_) == set(categorical) and fitted[False].level_offsets_ == {}
    assert loaded.level_offsets_ == model.level_offsets_
    pd.testing.assert_frame_equal(model.sample(500, random_state=3), loaded.sample(500, random_state=3))


def power_law_table(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """`y` is 300 x^1.5 times a factor per grade, within 1 %; `noise` is unrelated to anything."""
    rng = np.random.default_rng(seed)
    grade = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    x = rng.lognormal(0, 0.4, n)
    factor = pd.Series(grade).map({"a": 1.0, "b": 1.2, "c": 0.8}).to_numpy()
    y = np.round(300 * x**1.5 * factor * np.exp(rng.normal(0, 0.01, n))).astype(np.int64)
    table = pd.DataFrame({"x": x, "grade": grade, "y": y, "noise": rng.normal(50, 10, n)})
    table.loc[rng.random(n) < 0.03, "x"] = np.nan  # a missing anchor counts as the anchor's mean
    return table


def test_trends_take_out_a_power_law_and_level_effects_and_put_them_back() -> None:
    table = power_law_table()
    trends = Trends.fit(table, column_kinds(table, "auto"))
    assert trends.names == ["y"] and trends.kinds == {"y": "integer"}  # x and noise keep their values
    (trend,) = trends.trends
    assert trend.anchor == "x" and trend.log and trend.anchor_log
    assert trend.slope == pytest.approx(1.5, abs=0.01)
    effects = dict(trend.effects["grade"])  # the most frequent grade, "a", is the reference
    assert effects["b"] == pytest.approx(np.log(1.2), abs=0.005)
    assert effects["c"] == pytest.approx(np.log(0.8), abs=0.005)
    removed = trends.remove(table)
    has_x = table["x"].notna()
    assert removed.loc[has_x, "y"].std() < 0.012  # the 1 % noise is what the GAN is left to learn
    pd.testing.assert_frame_equal(removed[["x", "grade", "noise"]], table[["x", "grade", "noise"]])
    saved = Trends.from_json(json.loads(json.dumps(trends.to_json())))
    pd.testing.assert_frame_equal(saved.restore(removed), table)  # integers come back as integers
    far = removed.assign(y=removed["y"] + 10.0)
    restored = saved.restore(far)
    assert restored["y"].max() == table["y"].max()  # clipped to the observed range ...
    assert saved.restore(far, clip=False)["y"].max() > table["y"].max()  # ... unless told otherwise


def test_trends_keep_a_near_exact_relation_in_a_brief_fit(tmp_path: Path) -> None:
    table = power_law_table(1000)

    def spread(rows: pd.DataFrame) -> float:
        """The spread of log y around the table's law; 0.01 in the data."""
        factor = rows["grade"].map({"a": 1.0, "b": 1.2, "c": 0.8}).astype(float)
        deviation = np.log(rows["y"] / (300 * rows["x"] ** 1.5 * factor))
        return float(deviation[rows["x"].notna()].std())

    settings = {**FAST, "epochs": 20}
    model = TabularGAN(random_state=0, **settings).fit(table)
    plain = TabularGAN(random_state=0, trends=False, **settings).fit(table)
    assert model.trends_.names == ["y"] and plain.trends_.names == []
    assert (
        model.kinds_
        == plain.kinds_
        == {"x": "continuous", "grade": "categorical", "y": "integer", "noise": "continuous"}
    )
    rows = model.sample(2000, random_state=1)
    assert spread(rows) < 0.15 < spread(plain.sample(2000, random_state=1))  # about 0.09 and 0.8
    assert rows["y"].dtype == np.int64 and rows["y"].between(table["y"].min(), table["y"].max()).all()
    loaded = TabularGAN.load(model.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.sample(500, random_state=3), model.sample(500, random_state=3))
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    numbers = set(_numbers([meta["columns"], meta["trends"]]))  # y's values are integers: no substring test
    stored = numbers & {float(v) for column in ("x", "y") for v in table[column].dropna()}
    assert stored <= {float(table[c].min()) for c in ("x", "y")} | {float(table[c].max()) for c in ("x", "y")}


def _numbers(value: Any) -> list[float]:
    """Return every number in a JSON value."""
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return [float(value)] if isinstance(value, int | float) and not isinstance(value, bool) else []


def graded_table(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """`grade` is read off the numbers (x + y above 0 is "high"; 5 % flipped), `band` off the grade and the
    sign of y, with 5 % missing; `noise` is unrelated to anything."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=n)
    high = (x + y > 0) ^ (rng.random(n) < 0.05)
    band = np.where(high, np.where(y > 0, "p", "q"), "r").astype(object)
    band[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {"x": x, "grade": np.where(high, "high", "low"), "y": y, "band": band, "noise": rng.normal(size=n)}
    )


def _agreement(rows: pd.DataFrame) -> tuple[float, float]:
    """Return the shares of rows whose grade follows x + y and whose band (where given) follows grade, y."""
    grade = (rows["grade"] == "high") == (rows["x"] + rows["y"] > 0)
    given = rows["band"].notna()
    expected = np.where(rows["grade"] == "high", np.where(rows["y"] > 0, "p", "q"), "r")
    return float(grade.mean()), float((rows["band"] == expected)[given].mean())


def test_the_level_refiner_draws_levels_from_the_numbers_and_keeps_what_it_is_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ganforge.tabular import refine

    monkeypatch.setattr(refine, "STEPS", 300)
    table = graded_table()
    kinds = column_kinds(table, "auto")
    columns = {}
    for name in ("grade", "band"):
        columns[name] = CategoricalColumn(name, kinds[name], str(table[name].dtype))
        columns[name].fit(table[name], 500)
    torch.manual_seed(0)
    refiner = refine.LevelRefiner.fit(table, kinds, list(columns.values()), np.random.default_rng(0))
    assert refiner is not None and refiner.columns == ["grade", "band"]
    assert [scale.name for scale in refiner.scales] == ["x", "y", "noise"]
    rng = np.random.default_rng(1)
    shuffled = table.assign(grade=rng.permutation(table["grade"]), band=rng.permutation(table["band"]))
    assert max(_agreement(shuffled)) < 0.6
    refined = refiner.refine(shuffled, columns, np.random.default_rng(2))
    grade, band = _agreement(refined)
    assert grade > 0.9 and band > 0.9  # the data's own are 0.95 and 1
    assert 0.02 < refined["band"].isna().mean() < 0.09  # the missing level is drawn at about its 5 %
    pd.testing.assert_frame_equal(refined[["x", "y", "noise"]], shuffled[["x", "y", "noise"]])
    kept = refiner.refine(shuffled, columns, np.random.default_rng(2), keep={"grade"})
    assert kept["grade"].equals(shuffled["grade"])
    assert _agreement(kept)[1] > 0.9  # the band follows the grade it was given, not the numbers' grade
    again = refiner.refine(shuffled, columns, np.random.default_rng(2))
    pd.testing.assert_frame_equal(again, refined)


def test_refined_levels_follow_the_numbers_in_a_brief_fit_and_are_saved_without_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganforge.tabular import refine

    monkeypatch.setattr(refine, "STEPS", 300)
    table = graded_table(1000)
    model = TabularGAN(random_state=0, refine_levels=True, **FAST).fit(table)
    plain = TabularGAN(random_state=0, **FAST).fit(table)  # under 5,000 rows: no refinement by default
    assert model.refined_columns_ == ["grade", "band"] and plain.refined_columns_ == []
    rows = model.sample(2000, random_state=1)
    grade, band = _agreement(rows)
    plain_grade, plain_band = _agreement(plain.sample(2000, random_state=1))
    assert grade > 0.85 > plain_grade and band > 0.85 > plain_band
    asked = model.sample(300, conditions={"grade": "low"}, random_state=2)
    assert (asked["grade"] == "low").all() and (asked["band"].dropna() == "r").mean() > 0.9
    loaded = TabularGAN.load(model.save(tmp_path / "m"))
    assert loaded.refined_columns_ == ["grade", "band"]
    pd.testing.assert_frame_equal(loaded.sample(500, random_state=3), model.sample(500, random_state=3))
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    values = {float(v) for column in ("x", "y", "noise") for v in table[column]}
    assert not set(_numbers(meta["refiner"])) & values
    with pytest.raises(UserError, match="refine_levels: a private fit"):
        TabularGAN(refine_levels=True, dp_epsilon=1.0, **FAST).fit(table)

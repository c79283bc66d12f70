"""Latent editing: slerp, attribute directions, truncation, the directions file and `ganforge edit`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import editing
from ganforge.cli import main

Capture = pytest.CaptureFixture[str]

TINY_DIGITS = [
    "training.steps=30",
    "training.batch_size=32",
    "training.threads=1",
    "nets.generator.options.width=16",
    "nets.discriminator.options.width=16",
    "logging.tensorboard=false",
    "logging.checkpoint_every=30",
    "monitors.enabled=false",
]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-step DCGAN run on the 8x8 digits."""
    run_dir = tmp_path_factory.mktemp("editing") / "run"
    ganforge.train(preset="dcgan-digits", overrides=TINY_DIGITS, run_dir=run_dir)
    return run_dir


def test_slerp_endpoints_are_the_inputs() -> None:
    a, b = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0)).double()
    assert torch.allclose(editing.slerp(a, b, 0.0), a, atol=1e-12)
    assert torch.allclose(editing.slerp(a, b, 1.0), b, atol=1e-12)


def test_slerp_keeps_the_norm_of_equal_norm_inputs() -> None:
    a, b = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(1)).double()
    b = b / b.norm(dim=-1, keepdim=True) * a.norm(dim=-1, keepdim=True)
    t = torch.linspace(0, 1, 9)[:, None, None].double()  # (9, 1, 1) against (4, 32)
    path = editing.slerp(a, b, t)  # (9, 4, 32)
    assert path.shape == (9, 4, 32)
    assert torch.allclose(path.norm(dim=-1), a.norm(dim=-1).expand(9, 4), rtol=1e-10)
    # the straight line between the same points dips inside the sphere
    assert ((1 - 0.5) * a + 0.5 * b).norm(dim=-1).lt(a.norm(dim=-1)).all()


def test_slerp_of_parallel_latents_falls_back_to_lerp() -> None:
    a = torch.tensor([[1.0, 2.0, 3.0]])
    for b in (2 * a, -a):
        mixed = editing.slerp(a, b, 0.25)
        assert torch.isfinite(mixed).all()
        assert torch.allclose(mixed, 0.75 * a + 0.25 * b)


def test_direction_from_labels_and_probe_recover_the_labelled_axis() -> None:
    z = torch.randn(4000, 8, generator=torch.Generator().manual_seed(2))
    labels = (z[:, 0] > 0).numpy()  # sign(z[0])
    axis = torch.zeros(8)
    axis[0] = 1
    for found in (editing.direction_from_labels(z, labels), editing.direction_from_probe(z, labels)):
        assert found.shape == (8,) and torch.isclose(found.norm(), torch.tensor(1.0))
        assert float(found @ axis) > 0.95
    by_class = np.where(labels, 7, 3)  # class labels, with the class that has the attribute named
    assert float(editing.direction_from_labels(z, by_class, positive=7) @ axis) > 0.95


def test_direction_needs_samples_with_and_without_the_attribute() -> None:
    with pytest.raises(ganforge.UserError, match="no sample has the attribute"):
        editing.direction_from_labels(torch.randn(10, 4), np.zeros(10, dtype=int), positive=7)


def test_truncate_scales_towards_the_mean_and_checks_psi() -> None:
    z = torch.randn(6, 4)
    assert torch.equal(editing.truncate(z, 1.0), z)
    assert torch.allclose(editing.truncate(z, 0.5), z / 2)
    for psi in (0.0, -0.5, 1.5):
        with pytest.raises(ganforge.UserError, match=r"psi must be in \(0, 1\]"):
            editing.truncate(z, psi)


def test_interpolation_strip_rows_start_and_end_at_random_samples(digits_run: Path) -> None:
    sampler = ganforge.load_generator(digits_run)
    strip = editing.interpolation_strip(sampler, n_rows=3, steps=5, seed=4)
    assert strip.shape == (15, 1, 8, 8)
    ends = sampler.decode(sampler.latents(6, 4))  # pairs: rows start at latents 0..2 and end at 3..5
    assert torch.allclose(strip[0::5], ends[:3], atol=1e-5)
    assert torch.allclose(strip[4::5], ends[3:], atol=1e-5)


def test_directions_round_trip_through_the_run_folder(digits_run: Path, tmp_path: Path) -> None:
    vector = torch.nn.functional.normalize(torch.randn(64), dim=0)
    path = editing.save_direction(tmp_path, "smile", editing.Direction(vector, {"method": "mean"}))
    assert path.name == "directions.safetensors" and b"pickle" not in path.read_bytes()[:64]
    loaded = editing.load_directions(tmp_path)
    assert list(loaded) == ["smile"] and torch.equal(loaded["smile"].vector, vector)
    assert loaded["smile"].info == {"method": "mean"}


def test_classify_samples_uses_the_runs_own_data(digits_run: Path) -> None:
    from ganforge.config import DataConfig
    from ganforge.data import load_dataset

    real = load_dataset(DataConfig(name="digits"))
    labels, accuracy = editing.classify_samples(digits_run, real.x[:200])
    assert accuracy > 0.9  # logistic regression on the 8x8 digits' pixels
    assert (labels == real.y[:200].numpy()).mean() > 0.9


def run_cli(capsys: Capture, *argv: object) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def test_edit_cli_finds_a_direction_and_draws_a_grid(
    digits_run: Path, tmp_path: Path, capsys: Capture
) -> None:
    sampler = ganforge.load_generator(digits_run)
    labels, _ = editing.classify_samples(digits_run, sampler.decode(sampler.latents(300, 0)))
    common = int(np.bincount(labels).argmax())  # a class a 30-step generator surely makes, and not only it
    name = f"digit={common}"
    code, err = run_cli(capsys, "edit", digits_run, "--find", name, "--samples", 300)
    assert code == 0, err
    assert name in editing.load_directions(digits_run)
    info = editing.load_directions(digits_run)[name].info
    assert info["method"] == "probe" and 0.9 < info["classifier_accuracy"] <= 1
    out = tmp_path / "edit.png"
    argv = ["edit", digits_run, "--direction", name, "--amount", 2, "--n", 3, "--steps", 5, "--out", out]
    code, err = run_cli(capsys, *argv, "--psi", 0.8)
    assert code == 0, err
    grid = Image.open(out)
    assert grid.mode == "L" and grid.size == (5 * 34 + 2, 3 * 34 + 2)  # 8x8 cells enlarged to 32, padding 2
    code, err = run_cli(capsys, "directions", digits_run)
    assert code == 0


def test_edit_cli_interpolates(digits_run: Path, tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "strip.png"
    code, err = run_cli(capsys, "edit", digits_run, "--interpolate", "--n", 2, "--steps", 6, "--out", out)
    assert code == 0, err
    assert Image.open(out).size == (6 * 34 + 2, 2 * 34 + 2)


def assert_one_line(code: int, err: str, *words: str) -> None:
    assert code == 2 and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for word in words:
        assert word in err, err


def test_edit_cli_unknown_direction_is_one_line(digits_run: Path, tmp_path: Path, capsys: Capture) -> None:
    editing.save_direction(tmp_path, "digit=7", editing.Direction(torch.eye(64)[0], {}))
    (tmp_path / "generator.safetensors").symlink_to(digits_run / "generator.safetensors")
    code, err = run_cli(capsys, "edit", tmp_path, "--direction", "smile", "--out", tmp_path / "e.png")
    assert_one_line(code, err, "--direction: unknown direction 'smile' (known: digit=7)")


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--interpolate", "--psi", "0"], ["--psi", "(0, 1]"]),
        (["--interpolate", "--psi", "1.5"], ["--psi"]),
        (["--direction", "x", "--amount", "-1"], ["--amount", "(0, 10]"]),
        (["--direction", "x", "--amount", "50"], ["--amount"]),
        (["--interpolate", "--steps", "1"], ["--steps"]),
        ([], ["exactly one of"]),
        (["--interpolate", "--direction", "x"], ["exactly one of"]),
        (["--find", "digit=12", "--samples", "50"], ["--find", "class 12 out of range"]),
        (["--find", "smile"], ["--find", "digit=7"]),
    ],
)
def test_edit_cli_bad_values_are_one_line(
    digits_run: Path, tmp_path: Path, capsys: Capture, flags: list[str], words: list[str]
) -> None:
    code, err = run_cli(capsys, "edit", digits_run, *flags, "--out", tmp_path / "e.png")
    assert_one_line(code, err, *words)

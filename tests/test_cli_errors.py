"""User mistakes on the command line: one line on stderr starting with `error: `, exit code 2, no traceback.

Most cases call `ganforge.cli.main` in-process (fast); a few run `python -m ganforge` as a real subprocess to
prove the installed entry point behaves the same.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ganforge.cli import main
from ganforge.config import resolve
from ganforge.data import BatchLoader, DataInfo, TensorData
from ganforge.engine.checkpoint import list_checkpoints, load_state
from ganforge.sampling import load_generator

Capture = pytest.CaptureFixture[str]

# Small and bounded, so that a case which wrongly passes validation trains for two steps, not thousands.
TINY = [
    "--preset", "vanilla-ring8",
    "--set", "training.steps=2",
    "--set", "training.batch_size=16",
    "--set", "data.num_samples=64",
    "--set", "logging.tensorboard=false",
]  # fmt: skip


def run_in_process(capsys: Capture, *argv: object) -> tuple[int, str, str]:
    """Return (exit code, stdout, stderr) of `ganforge ARGV` run through `main`."""
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(cwd: Path, *argv: object) -> subprocess.CompletedProcess[str]:
    """Run `python -m ganforge ARGV` in `cwd`, the way a user's shell would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ganforge", *map(str, argv)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def assert_user_error(code: int, err: str, *words: str) -> str:
    """Check the contract for a user mistake and return the error line."""
    assert "Traceback" not in err, err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    line = lines[0]
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, f"{word!r} missing from: {line}"
    return line


def copy_run(run: Path, destination: Path) -> Path:
    return Path(shutil.copytree(run, destination))


def newest_checkpoint(run: Path) -> Path:
    return list_checkpoints(run / "checkpoints")[-1]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_tensor_bytes(path: Path) -> None:
    """Invert 16 bytes in the middle of a safetensors file's tensor data; the length stays the same."""
    data = bytearray(path.read_bytes())
    (header_size,) = struct.unpack("<Q", data[:8])
    start = 8 + header_size  # tensor data follows the 8-byte length and the JSON header
    middle = start + (len(data) - start) // 2
    for i in range(middle, middle + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def save_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


# -- the real entry point ------------------------------------------------------------------------------


def test_subprocess_unknown_config_key(tmp_path: Path) -> None:
    result = run_subprocess(tmp_path, "train", *TINY, "--set", "training.stepz=3", "--out", "run")
    assert_user_error(result.returncode, result.stderr, "training.stepz", "unknown key")
    assert not (tmp_path / "run").exists()


def test_subprocess_resume_truncated_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    run = copy_run(tiny_run, tmp_path / "run")
    newest = newest_checkpoint(run)
    truncate(newest)
    result = run_subprocess(tmp_path, "resume", "run")
    assert_user_error(result.returncode, result.stderr, "corrupted", newest.name)


# -- config: unknown keys, wrong types and values, unknown names, bad flags ------------------------------

TRAIN_MISTAKES = {
    "unknown key": (["--set", "training.stepz=3"], ["training.stepz", "unknown key", "steps"]),
    "wrong type": (["--set", "training.batch_size=abc"], ["training.batch_size", "integer"]),
    "steps 0": (["--set", "training.steps=0"], ["training.steps"]),
    "negative lr": (["--set", "optim.generator.lr=-1"], ["optim.generator.lr"]),
    "unknown dataset": (["--set", "data.name=nosuch"], ["data.name", "'nosuch'", "known:", "ring8"]),
    "unknown net": (
        ["--set", "nets.generator.name=nosuch"],
        ["nets.generator.name", "known:", "mlp_generator"],
    ),
    "unknown objective": (["--set", "objective.name=nosuch"], ["objective.name", "known:", "nonsaturating"]),
    "unknown recipe": (["--set", "recipe.name=nosuch"], ["recipe.name", "known:", "vanilla"]),
    "batch over data": (["--set", "training.batch_size=128"], ["training.batch_size", "64"]),
    "set without =": (["--set", "nokeyvalue"], ["--set", "nokeyvalue"]),
    "unknown flag": (["--bogus"], ["--bogus"]),
    "missing folder": (["--set", "data.name=folder:/does/not/exist"], ["data.name", "/does/not/exist"]),
    "missing npz": (["--set", "data.name=npz:/missing.npz"], ["data.name", "/missing.npz"]),
    "negative data seed": (["--set", "data.seed=-1"], ["data.seed"]),
    "huge training seed": (["--set", "training.seed=18446744073709551616"], ["training.seed"]),
}


@pytest.mark.parametrize("extra, words", TRAIN_MISTAKES.values(), ids=TRAIN_MISTAKES.keys())
def test_train_mistake(extra: list[str], words: list[str], tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run_in_process(capsys, "train", *TINY, *extra, "--out", tmp_path / "run")
    assert_user_error(code, err, *words)
    assert not (tmp_path / "run").exists()  # a refused run leaves no folder behind


def test_invalid_yaml_names_line_and_column(tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "bad.yaml").write_text("training:\n  steps: [1, 2\n")
    code, _, err = run_in_process(capsys, "train", tmp_path / "bad.yaml")
    assert_user_error(code, err, "bad.yaml", "not valid YAML", "line 3")


def test_sample_out_is_a_folder_or_unwritable(tiny_run: Path, tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "folder.png").mkdir()
    code, _, err = run_in_process(capsys, "sample", tiny_run, "--out", tmp_path / "folder.png")
    assert_user_error(code, err, "--out", "folder.png", "is a folder")
    (tmp_path / "file").write_text("")
    code, _, err = run_in_process(capsys, "sample", tiny_run, "--out", tmp_path / "file" / "s.png")
    assert_user_error(code, err, "--out", "cannot write")


def test_resume_refuses_to_go_backwards(tiny_run: Path, tmp_path: Path, capsys: Capture) -> None:
    run = copy_run(tiny_run, tmp_path / "run")
    code, _, err = run_in_process(capsys, "resume", run, "--steps", "3")
    assert_user_error(code, err, "--steps", "already done 4 steps")


OTHER_MISTAKES = {
    "unknown preset": (["train", "--preset", "nosuch"], ["--preset", "'nosuch'", "known:", "vanilla-ring8"]),
    "missing config file": (["train", "/no/such/config.yaml"], ["/no/such/config.yaml", "does not exist"]),
    "resume missing run": (["resume", "/no/such/run"], ["/no/such/run"]),
    "sample missing run": (["sample", "/no/such/run"], ["/no/such/run"]),
    "resume steps 0": (["resume", "/no/such/run", "--steps", "0"], ["--steps"]),
    "list unknown kind": (["list", "bogus"], ["list", "'bogus'", "presets"]),
}


@pytest.mark.parametrize("argv, words", OTHER_MISTAKES.values(), ids=OTHER_MISTAKES.keys())
def test_other_mistake(argv: list[str], words: list[str], capsys: Capture) -> None:
    code, _, err = run_in_process(capsys, *argv)
    assert_user_error(code, err, *words)


def test_unknown_key_in_config_file(tmp_path: Path, capsys: Capture) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("recipe: vanilla\ntraining:\n  steps: 2\n  stepz: 3\n")
    code, _, err = run_in_process(capsys, "train", config, "--dry-run")
    assert_user_error(code, err, "training.stepz", "unknown key")


def test_dry_run_prints_resolved_config_and_creates_nothing(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in_process(
        capsys, "train", "--preset", "vanilla-ring8", "--set", "training.steps=7", "--dry-run", "--out", "run"
    )
    assert code == 0, err
    printed = yaml.safe_load(out)
    assert printed["training"]["steps"] == 7
    assert printed["recipe"]["name"] == "vanilla"  # from the preset
    expected = resolve(preset="vanilla-ring8", overrides=["training.steps=7"])
    assert resolve(printed) == expected  # the printed YAML is the whole resolved config
    assert list(tmp_path.iterdir()) == []  # neither --out nor a default runs/ folder


# -- image folders ---------------------------------------------------------------------------------------


def test_folder_without_images(tmp_path: Path, capsys: Capture) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "notes.txt").write_text("no pictures here")
    code, _, err = run_in_process(
        capsys, "train", *TINY, "--set", f"data.name=folder:{folder}", "--out", tmp_path / "r"
    )
    assert_user_error(code, err, "data.name", "no images")


@pytest.mark.parametrize("channels", ["auto", "rgb"])  # two code paths read files: mode sniffing and loading
def test_folder_with_unreadable_image(channels: str, tmp_path: Path, capsys: Capture) -> None:
    folder = tmp_path / "images"
    save_png(folder / "a_good.png", np.zeros((8, 8)))
    (folder / "b_bad.png").write_bytes(b"this is not a PNG file" * 8)
    code, _, err = run_in_process(
        capsys, "train", *TINY, "--set", f"data.name=folder:{folder}", "--set", f"data.channels={channels}",
        "--out", tmp_path / "run",
    )  # fmt: skip
    assert_user_error(code, err, "b_bad.png")


def test_folder_of_mixed_sizes_asks_for_image_size(tmp_path: Path, capsys: Capture) -> None:
    folder = tmp_path / "images"
    save_png(folder / "small.png", np.zeros((8, 8)))
    save_png(folder / "large.png", np.zeros((12, 10)))
    code, _, err = run_in_process(
        capsys, "train", *TINY, "--set", f"data.name=folder:{folder}", "--out", tmp_path / "r"
    )
    assert_user_error(code, err, "different sizes", "data.image_size")


# -- sample and resume on a real run ---------------------------------------------------------------------


def test_tiny_run_samples(tiny_run: Path, tmp_path: Path, capsys: Capture) -> None:
    """The run the error cases below damage is itself healthy."""
    code, _, err = run_in_process(
        capsys, "sample", tiny_run, "--n", 8, "--seed", 0, "--out", tmp_path / "s.npz"
    )
    assert code == 0, err
    with np.load(tmp_path / "s.npz") as archive:
        assert archive["x"].shape == (8, 2)


@pytest.mark.parametrize("n", [0, -5])
def test_sample_needs_positive_n(n: int, tiny_run: Path, tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run_in_process(capsys, "sample", tiny_run, "--n", n, "--out", tmp_path / "s.png")
    assert_user_error(code, err, "--n", str(n))
    assert not (tmp_path / "s.png").exists()


def test_sample_refuses_unknown_suffix(tiny_run: Path, tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run_in_process(capsys, "sample", tiny_run, "--out", tmp_path / "samples.jpg")
    assert_user_error(code, err, "--out", "samples.jpg")


def test_train_refuses_non_empty_out(tmp_path: Path, capsys: Capture) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("an earlier run\n")
    code, _, err = run_in_process(capsys, "train", *TINY, "--out", run)
    assert_user_error(code, err, "--out", "--overwrite")
    assert (run / "config.yaml").read_text() == "an earlier run\n"


@pytest.mark.parametrize("damage", [truncate, flip_tensor_bytes], ids=["truncated", "flipped bytes"])
def test_resume_corrupted_checkpoint(damage, tiny_run: Path, tmp_path: Path, capsys: Capture) -> None:
    run = copy_run(tiny_run, tmp_path / "run")
    newest = newest_checkpoint(run)
    damage(newest)
    code, _, err = run_in_process(capsys, "resume", run)
    assert_user_error(code, err, "corrupted", newest.name)


def test_sample_truncated_generator(tiny_run: Path, tmp_path: Path, capsys: Capture) -> None:
    run = copy_run(tiny_run, tmp_path / "run")
    truncate(run / "generator.safetensors")
    code, _, err = run_in_process(capsys, "sample", run, "--out", tmp_path / "s.png")
    assert_user_error(code, err, "corrupted", "generator.safetensors")


def test_sample_generator_with_flipped_bytes(tiny_run: Path, tmp_path: Path, capsys: Capture) -> None:
    run = copy_run(tiny_run, tmp_path / "run")
    flip_tensor_bytes(run / "generator.safetensors")
    code, _, err = run_in_process(capsys, "sample", run, "--out", tmp_path / "s.png")
    assert_user_error(code, err, "corrupted", "generator.safetensors")


# -- divergence ------------------------------------------------------------------------------------------


def write_diverging_points(path: Path, count: int = 40, batch_size: int = 16) -> int:
    """Write points in which every sample that epoch 0 leaves out is 3e38; return a training seed.

    With the returned seed, steps 1 and 2 (epoch 0) see only ordinary points and step 3, the first batch of
    epoch 1, holds at least one huge point, so the discriminator's logits overflow exactly at step 3.
    """
    values = torch.arange(count, dtype=torch.float32)[:, None]  # each point's value is its index
    ids = TensorData(values, None, DataInfo("ids", "points", (1,), None))
    for seed in range(100):
        loader = BatchLoader(ids, batch_size, seed, torch.device("cpu"))
        seen = {int(i) for _ in range(count // batch_size) for i in loader.next().x[:, 0]}
        step3 = {int(i) for i in loader.next().x[:, 0]}
        if step3 - seen:
            points = np.random.default_rng(0).normal(size=(count, 2)).astype(np.float32)
            # 3e38 is finite in float32 but overflows in the discriminator's first layers.
            points[sorted(set(range(count)) - seen)] = 3e38
            np.savez(path, x=points)
            return seed
    raise AssertionError("no seed puts an unseen point into the first batch of epoch 1")


def test_divergence_stops_with_step_and_keeps_last_checkpoint(tmp_path: Path) -> None:
    seed = write_diverging_points(tmp_path / "points.npz")
    result = run_subprocess(
        tmp_path, "train", "--preset", "vanilla-ring8", "--out", "run",
        "--set", "data.name=npz:points.npz", "--set", f"training.seed={seed}", "--set", "training.steps=6",
        "--set", "training.batch_size=16", "--set", "logging.checkpoint_every=1",
        "--set", "logging.tensorboard=false",
    )  # fmt: skip
    err = result.stderr
    assert "Traceback" not in err, err
    assert result.returncode == 2, err
    # The progress line "training vanilla on ..." comes first; the error is the one last line.
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert "step 3" in errors[0] and "step_00000002.safetensors" in errors[0], errors[0]

    checkpoints = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [path.name for path in checkpoints] == ["step_00000001.safetensors", "step_00000002.safetensors"]
    state = load_state(checkpoints[-1])
    assert state["step"] == 2
    assert all(torch.isfinite(tensor).all() for tensor in state["nets"].values())
    sampler = load_generator(tmp_path / "run")  # the exported generator is the step-2 one, still usable
    assert sampler.step == 2
    assert torch.isfinite(sampler.sample(16, seed=0)).all()

"""Distributed data-parallel training with 2 processes on the CPU (gloo), started as users start them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganforge.engine import distributed
from ganforge.engine.checkpoint import list_checkpoints, load_state

# Trains through the engine in each process, then saves that process's weights, so the test can compare
# ranks (a run folder only ever holds rank 0's).
WORKER = """
import json, sys
from safetensors.torch import save_file
from ganforge.config import resolve
from ganforge.engine import Trainer, distributed

preset, overrides, run_dir, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
trainer = Trainer(resolve(preset=preset, overrides=overrides), run_dir)
trainer.fit()
state = {k: v.contiguous() for k, v in trainer.recipe.nets.state_dict().items()}
save_file(state, f"{out}/rank{trainer.world.rank}.safetensors")
distributed.end_process(0)  # as a script run by torchrun should end (see docs/distributed.md)
"""

DCGAN = [
    "--set", "recipe.name=dcgan",
    "--set", "data.name=digits",
    "--set", "nets.latent_dim=16",
    "--set", "nets.generator.options.width=16",
    "--set", "nets.discriminator.options.width=16",
    "--set", "training.batch_size=32",
    "--set", "training.ema_decay=0.9",
    "--set", "training.threads=1",
    "--set", "logging.tensorboard=false",
    "--set", "logging.checkpoint_every=4",
    "--set", "stability.r1=0.5",
    "--set", "stability.r1_every=3",
]  # fmt: skip


def ganforge(cwd: Path, *argv: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "ganforge", *map(str, argv)]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def train_in_two_processes(tmp_path: Path, preset: str, overrides: list[str], run_dir: Path) -> list[dict]:
    """Run WORKER in 2 processes through the launcher behind `--nproc`; return each rank's weights."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    code = distributed.launch([preset, json.dumps(overrides), str(run_dir), str(tmp_path)], 2, [str(script)])
    assert code == 0
    return [load_file(tmp_path / f"rank{rank}.safetensors") for rank in range(2)]


def test_ranks_hold_identical_weights_and_each_trains_on_its_half_of_the_batch(tmp_path: Path) -> None:
    overrides = [*DCGAN[1::2][:6], "training.steps=8", "training.threads=1", "logging.tensorboard=false"]
    ranks = train_in_two_processes(tmp_path, "dcgan-digits", overrides, tmp_path / "run")
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:
        if "running_" in key or "num_batches" in key:
            continue  # batch-norm statistics are per rank (each sees its own half): see engine/distributed.py
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    saved = load_state(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])
    assert saved["world"] == 2 and len(saved["ranks"]) == 2
    streams = [rank["rng"]["torch"] for rank in saved["ranks"]]
    assert not torch.equal(*streams)  # each rank draws its own noise, from a seed derived from the run's
    assert distributed.rank_seed(0, 0) == 0 and distributed.rank_seed(0, 1) != 0


def test_a_two_process_run_resumes_exactly(tmp_path: Path) -> None:
    straight = ganforge(tmp_path, "train", *DCGAN, "--set", "training.steps=12", "--nproc", "2", "--out", "a")
    assert straight.returncode == 0, straight.stderr
    # Constant learning rates: a schedule would decay over the 6 steps the first part was told to run.
    first = ganforge(tmp_path, "train", *DCGAN, "--set", "training.steps=6", "--nproc", "2", "--out", "b")
    assert first.returncode == 0, first.stderr
    resumed = ganforge(tmp_path, "resume", "b", "--steps", "12", "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    from test_resume import assert_same_state  # noqa: PLC0415 - the exact comparison the 1-process tests use

    ends = []
    for run in ("a", "b"):
        state = load_state(list_checkpoints(tmp_path / run / "checkpoints")[-1])
        state.pop("versions")
        ends.append(state)
    assert ends[0]["step"] == 12 and ends[0]["world"] == 2
    assert_same_state(ends[0], ends[1])
    assert "precision" in straight.stderr and "2 processes" in straight.stderr


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--nproc", "0"], ["--nproc", "at least 1"]),
        (["--nproc", str(distributed.process_limit("cpu")[0] + 1)], ["--nproc", "CPU cores"]),
        (["--nproc", "2", "--set", "training.batch_size=15"], ["--nproc", "batch_size 15", "divisible"]),
        (["--set", "training.precision=fp16"], ["training.precision", "fp16 needs a CUDA device"]),
    ],
)
def test_bad_distributed_or_precision_input_gets_one_line(
    tmp_path: Path, flags: list[str], words: list[str]
) -> None:
    from test_cli_errors import TINY, assert_user_error  # noqa: PLC0415

    result = ganforge(tmp_path, "train", *TINY, *flags, "--out", "run")
    assert_user_error(result.returncode, result.stderr, *words)


def test_distributed_training_needs_a_named_run_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ganforge as api  # noqa: PLC0415
    from ganforge.errors import UserError  # noqa: PLC0415

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="--out"):
        api.train(preset="vanilla-ring8")


def test_ctrl_c_stops_every_process_at_one_step_and_the_run_resumes_exactly(tmp_path: Path) -> None:
    from test_resume import RING, assert_same_state, final_state, wait_for_step  # noqa: PLC0415

    straight = ganforge(tmp_path, "train", *RING, "--nproc", "2", "--out", "straight")
    assert straight.returncode == 0, straight.stderr
    env = {key: value for key, value in os.environ.items() if key != "WORLD_SIZE"}
    command = [sys.executable, "-m", "ganforge", "train", *RING, "--nproc", "2", "--out", "split"]
    # A terminal's Ctrl-C goes to the whole foreground process group: the launcher and both trainers.
    run = subprocess.Popen(
        command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    wait_for_step(tmp_path / "split", 150, run)
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 128 + signal.SIGINT, stderr
    assert "interrupted at step" in stderr and "Traceback" not in stderr
    stopped_at = load_state(list_checkpoints(tmp_path / "split" / "checkpoints")[-1])["step"]
    assert 150 <= stopped_at < 400
    resumed = ganforge(tmp_path, "resume", "split", "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "split"))


ENDING = """
import sys
import torch
from torch import nn
from ganforge.engine import distributed

world, device = distributed.setup("cpu")
net = distributed.replicate(nn.Linear(3, 3), device)
net(torch.ones(2, 3)).sum().backward()
assert distributed.joined()
print(f"rank {world.rank} done", end="")  # no newline: only a flush gets it out
distributed.end_process(3 + world.rank)
raise SystemExit("end_process returned")
"""


def test_end_process_leaves_the_group_flushes_and_exits_with_the_code(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "ending.py"
    script.write_text(ENDING)
    code = distributed.launch([], 2, [str(script)])
    out, err = capfd.readouterr()
    assert code == 3  # rank 0's code (3 + rank), which the launcher reports
    assert "rank 0 done" in out and "rank 1 done" in out
    assert "end_process returned" not in err

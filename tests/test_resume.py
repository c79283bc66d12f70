"""An interrupted run, resumed, ends bit-for-bit where the uninterrupted run ends (same machine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganforge import load_generator
from ganforge.config import resolve
from ganforge.engine import Callback, Trainer
from ganforge.engine.checkpoint import list_checkpoints, load_state

DCGAN = [
    "recipe.name=dcgan",
    "data.name=digits",
    "nets.latent_dim=16",
    "nets.generator.options.width=16",
    "nets.discriminator.options.width=16",
    "training.batch_size=32",
    "training.ema_decay=0.9",
    "training.threads=2",  # in-process and subprocess parts alike: bf16 results depend on the thread count
    "logging.tensorboard=false",
    "logging.checkpoint_every=5",
    "logging.sample_every=7",
    "logging.log_every=1",
]
SCHEDULES = ["optim.generator.schedule=cosine", "optim.discriminator.warmup_steps=4"]


def dcgan_config(steps: int = 20, schedules: bool = True):
    return resolve(overrides=[*DCGAN, f"training.steps={steps}", *(SCHEDULES if schedules else [])])


class SignalAt(Callback):
    """Sends this process `signum` at the end of step `step`, as a user or a scheduler would."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_step_end(self, trainer, stats) -> None:
        if trainer.step == self.step:
            os.kill(os.getpid(), self.signum)


def assert_same_state(left: dict, right: dict, where: str = "state") -> None:
    """Compare two checkpoint states exactly: every tensor bit for bit, every other value equal."""
    if isinstance(left, torch.Tensor):
        assert torch.equal(left, right), where
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            assert_same_state(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same_state(a, b, f"{where}[{index}]")
    else:
        assert left == right, where


def final_state(run_dir: Path) -> dict:
    state = load_state(list_checkpoints(run_dir / "checkpoints")[-1])
    state.pop("versions")
    return state


def losses(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "steps_per_s"} for row in rows]


def test_sigterm_then_resume_matches_the_straight_run(tmp_path: Path) -> None:
    straight = Trainer(dcgan_config(), tmp_path / "straight").fit()
    assert straight.reason == "finished"

    interrupted = Trainer(dcgan_config(), tmp_path / "split", [SignalAt(11, signal.SIGTERM)]).fit()
    assert (interrupted.reason, interrupted.step) == (
        "interrupted",
        11,
    )  # 11: between two periodic checkpoints
    assert list_checkpoints(tmp_path / "split" / "checkpoints")[-1].name == "step_00000011.safetensors"

    resumed = Trainer.resume(tmp_path / "split").fit()
    assert (resumed.reason, resumed.step) == ("finished", 20)
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "split"))
    assert losses(tmp_path / "straight") == losses(tmp_path / "split")
    # the exported generator too (compared as tensors: safetensors orders its header keys freely)
    exported = [load_generator(tmp_path / name).net.state_dict() for name in ("straight", "split")]
    assert_same_state(*exported)


def cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ganforge", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


RING = [
    "--preset",
    "vanilla-ring8",
    *sum(
        (
            ["--set", o]
            for o in [
                "training.steps=400",
                "training.batch_size=64",
                "nets.generator.options.hidden=[32,32]",
                "nets.discriminator.options.hidden=[32,32]",
                "logging.log_every=5",
                "logging.checkpoint_every=100",
                "logging.sample_every=1000",
                "logging.tensorboard=false",
            ]
        ),
        [],
    ),
]


def wait_for_step(run_dir: Path, step: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if metrics.is_file() and any(f'"step": {s},' in metrics.read_text() for s in range(step, step + 50)):
            return
        time.sleep(0.05)
    raise AssertionError(f"training did not reach step {step} in {timeout}s")


def test_ctrl_c_on_the_cli_then_resume_matches_the_straight_run(tmp_path: Path) -> None:
    straight = cli("train", *RING, "--out", "straight", cwd=tmp_path)
    assert straight.wait(timeout=120) == 0, straight.communicate()

    run = cli("train", *RING, "--out", "split", cwd=tmp_path)
    wait_for_step(tmp_path / "split", 150, run)  # past the first periodic checkpoint, at no fixed step
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 128 + signal.SIGINT, stderr
    assert "interrupted at step" in stderr and "Traceback" not in stderr
    stopped_at = load_state(list_checkpoints(tmp_path / "split" / "checkpoints")[-1])["step"]
    assert 150 <= stopped_at < 400

    resumed = cli("resume", "split", cwd=tmp_path)
    assert resumed.wait(timeout=120) == 0, resumed.communicate()
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "split"))


def test_a_killed_run_resumes_from_its_last_checkpoint_exactly(tmp_path: Path) -> None:
    # Constant learning rates: the crashed run is given more steps so that it cannot finish before the kill,
    # and a schedule would depend on the total.
    Trainer(dcgan_config(60, schedules=False), tmp_path / "straight").fit()
    flags = sum((["--set", o] for o in [*DCGAN, "training.steps=400"]), [])
    crashed = cli("train", *flags, "--out", "crashed", cwd=tmp_path)
    wait_for_step(tmp_path / "crashed", 8, crashed)
    crashed.kill()  # SIGKILL: no chance to write anything; the last periodic checkpoint must do
    crashed.wait()
    checkpoint_step = load_state(list_checkpoints(tmp_path / "crashed" / "checkpoints")[-1])["step"]
    # On a busy machine the poll can see step 8 late, while training runs on: leave room past it.
    assert checkpoint_step % 5 == 0 and checkpoint_step < 60

    resumed = Trainer.resume(tmp_path / "crashed", steps=60).fit()
    assert resumed.step == 60
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "crashed"))
    assert losses(tmp_path / "straight") == losses(
        tmp_path / "crashed"
    )  # lines past the checkpoint were dropped


class TwoCtrlC(Callback):
    """Presses Ctrl-C twice at the end of step 3: the first asks for a checkpoint, the second aborts."""

    def on_step_end(self, trainer, stats) -> None:
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)


def test_a_second_ctrl_c_aborts_at_once(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        Trainer(dcgan_config(), tmp_path, [TwoCtrlC()]).fit()
    assert not list_checkpoints(tmp_path / "checkpoints")  # aborted before the interruption checkpoint
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers are put back

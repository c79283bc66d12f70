"""Transfer learning: `training.init_from` starts from another run's nets; `stability.freeze_d` (FreezeD)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.config import resolve
from ganforge.engine.checkpoint import list_checkpoints, load_state
from ganforge.engine.trainer import Trainer
from ganforge.engine.transfer import layers_with_weights

Capture = pytest.CaptureFixture[str]

TINY_DIGITS = [
    "training.batch_size=32",
    "training.threads=1",
    "nets.generator.options.width=8",
    "nets.discriminator.options.width=8",
    "logging.tensorboard=false",
    "monitors.enabled=false",
]


def config(*overrides: str):
    return resolve(preset="dcgan-digits", overrides=[*TINY_DIGITS, *overrides])


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-step DCGAN run on the 8x8 digits, with checkpoints at steps 6 and 12."""
    run_dir = tmp_path_factory.mktemp("transfer") / "source"
    overrides = [*TINY_DIGITS, "training.steps=12", "logging.checkpoint_every=6"]
    ganforge.train(preset="dcgan-digits", overrides=overrides, run_dir=run_dir)
    return run_dir


def test_freeze_d_keeps_the_first_layers_bit_identical(tmp_path: Path) -> None:
    # 16x16 images: D has 4 layers with weights (conv, conv, batch norm, conv); the first two are frozen
    trainer = Trainer(
        config("training.steps=8", "data.image_size=16", "stability.freeze_d=2"), tmp_path / "run"
    )
    discriminator = trainer.recipe.nets["discriminator"]
    frozen_layers = layers_with_weights(discriminator)[:2]
    frozen = {id(p) for layer in frozen_layers for p in layer.parameters(recurse=False)}
    assert {id(p) for p in trainer.frozen} == frozen and frozen
    optimized = {id(p) for group in trainer.optimizers["discriminator"].param_groups for p in group["params"]}
    assert not frozen & optimized
    before = {name: p.detach().clone() for name, p in discriminator.named_parameters()}
    assert trainer.fit().step == 8
    for name, param in discriminator.named_parameters():
        if id(param) in frozen:
            assert torch.equal(param, before[name]), name
            assert not param.requires_grad
        else:
            assert not torch.equal(param, before[name]), f"{name} did not train"


def test_freeze_d_must_leave_a_layer_to_train(tmp_path: Path) -> None:
    layers = len(layers_with_weights(Trainer(config(), tmp_path / "probe").recipe.nets["discriminator"]))
    with pytest.raises(ganforge.UserError, match=f"stability.freeze_d: .* freeze at most {layers - 1}"):
        Trainer(config(f"stability.freeze_d={layers}"), tmp_path / "all")


def test_an_optimizer_over_no_parameters_steps_nothing() -> None:
    from ganforge.config import OptimizerConfig
    from ganforge.engine.optim import make_optimizer, make_schedule

    for name in ("adam", "adamw", "sgd", "rmsprop"):
        optimizer = make_optimizer([], OptimizerConfig(name=name))
        schedule = make_schedule(optimizer, OptimizerConfig(name=name), 10)
        optimizer.step()
        schedule.step()
        optimizer.load_state_dict(optimizer.state_dict())


def test_init_from_starts_from_the_source_runs_weights(source_run: Path, tmp_path: Path) -> None:
    newest = list_checkpoints(source_run / "checkpoints")[-1]
    saved = load_state(newest)["nets"]
    for source in (source_run, newest):  # a run folder (its newest checkpoint) or a checkpoint file
        trainer = Trainer(config("training.steps=3", f"training.init_from={source}"), tmp_path / "run")
        nets = trainer.recipe.nets.state_dict()
        assert nets.keys() == saved.keys()
        assert all(torch.equal(nets[key].cpu(), saved[key]) for key in saved)
        assert trainer.step == 0 and all(not opt.state for opt in trainer.optimizers.values())
        ema = trainer.ema.shadow.state_dict()  # the EMA starts from the loaded generator too
        assert all(torch.equal(ema[key].cpu(), saved[f"generator.{key}"]) for key in ema)
    scratch = Trainer(config("training.steps=3"), tmp_path / "scratch").recipe.nets.state_dict()
    assert not all(torch.equal(scratch[key], saved[key]) for key in saved)
    assert trainer.fit().step == 3


def test_init_from_with_other_shapes_names_the_setting(source_run: Path, tmp_path: Path) -> None:
    wider = config(f"training.init_from={source_run}", "nets.discriminator.options.width=16")
    with pytest.raises(ganforge.UserError, match=r"training\.init_from: the nets in .* do not fit"):
        Trainer(wider, tmp_path / "run")


@pytest.mark.parametrize("where", ["missing", "empty folder", "not a checkpoint"])
def test_bad_init_from_is_one_line_exit_2(tmp_path: Path, capsys: Capture, where: str) -> None:
    source = tmp_path / "source"
    if where == "empty folder":
        source.mkdir()
    elif where == "not a checkpoint":
        source = tmp_path / "notes.safetensors"
        source.write_text("hello")
    argv = ["train", "--preset", "dcgan-digits", "--out", str(tmp_path / "run")]
    for assignment in [*TINY_DIGITS, "training.steps=2", f"training.init_from={source}"]:
        argv += ["--set", assignment]
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("error: training.init_from: "), err
    assert not (tmp_path / "run").exists()

"""Engine pieces on their own: EMA, batch-norm recalibration, checkpoint trees, schedules, accumulation."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from ganforge.config import OptimizerConfig, resolve
from ganforge.engine import Trainer
from ganforge.engine import checkpoint as ckpt
from ganforge.engine.ema import EMA, recalibrate_batch_norm
from ganforge.engine.optim import make_optimizer, make_schedule
from ganforge.nets.dcgan import DCGANGenerator
from ganforge.recipes import Phase


def test_ema_follows_the_decay_formula_and_copies_before_start() -> None:
    net = nn.Linear(2, 1, bias=False)
    ema = EMA(net, decay=0.9, start=2)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net, step=0)  # before start: a copy
    assert torch.equal(ema.shadow.weight, net.weight)
    with torch.no_grad():
        net.weight.fill_(3.0)
    ema.update(net, step=2)  # 0.9 * 1 + 0.1 * 3
    assert torch.allclose(ema.shadow.weight, torch.full_like(net.weight, 1.2))
    assert not ema.shadow.weight.requires_grad


def test_batch_norm_recalibration_matches_the_nets_own_statistics() -> None:
    torch.manual_seed(0)
    net = DCGANGenerator(data_shape=(1, 8, 8), latent_dim=4, width=8)
    with torch.no_grad():  # running stats that belong to some other net
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.fill_(3.0)
                module.running_var.fill_(9.0)
    z = torch.randn(512, 4)
    recalibrate_batch_norm(net.eval(), [z[:256], z[256:]])
    assert not net.training and all(m.momentum == 0.1 for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    with torch.no_grad():
        eval_out = net(z)
        train_out = net.train()(z)
    assert torch.allclose(eval_out, train_out, atol=2e-2)


def test_checkpoint_tree_round_trip_keeps_types(tmp_path: Path) -> None:
    state = {
        "step": 7,
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2, 2)}},
            "param_groups": [{"betas": (0.5, 0.999), "lr": 1e-3, "params": [0], "foreach": None}],
        },
        "name": "x",
        "nan": float("nan"),
        "empty": [],
    }
    path = tmp_path / "c.safetensors"
    ckpt.save_state(path, state)
    loaded = ckpt.load_state(path)
    assert (
        loaded["step"] == 7 and loaded["name"] == "x" and math.isnan(loaded["nan"]) and loaded["empty"] == []
    )
    assert list(loaded["optimizer"]["state"]) == [0]  # int keys stay ints
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.5, 0.999)  # tuples stay tuples
    assert torch.equal(loaded["optimizer"]["state"][0]["exp_avg"], torch.ones(2, 2))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_a_failed_write_leaves_the_old_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    ckpt.save_state(path, {"w": torch.zeros(3)})

    def broken(temporary: Path) -> None:
        temporary.write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError):
        ckpt.write_atomic(path, broken)
    assert torch.equal(ckpt.load_state(path)["w"], torch.zeros(3))
    assert os.listdir(tmp_path) == ["c.safetensors"]


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    for step in (5, 10, 15, 20):
        ckpt.save_state(ckpt.checkpoint_path(tmp_path, step), {"step": step})
    ckpt.prune(tmp_path, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [
        "step_00000015.safetensors",
        "step_00000020.safetensors",
    ]


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("constant", [0.5, 1.0, 1.0, 1.0, 1.0]),
        ("linear", [0.5, 1.0, 1.0, 2 / 3, 1 / 3]),  # reaches 0 when training ends
        ("cosine", [0.5, 1.0, 1.0, 0.75, 0.25]),
    ],
)
def test_schedules_warm_up_then_decay(kind: str, expected: list[float]) -> None:
    config = OptimizerConfig(lr=1.0, schedule=kind, warmup_steps=2)
    optimizer = make_optimizer([nn.Parameter(torch.zeros(1))], config)
    schedule = make_schedule(optimizer, config, total_steps=5)
    seen = []
    for _ in range(5):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert seen == pytest.approx(expected)


def tiny(*extra: str):
    return resolve(
        overrides=[
            "recipe.name=vanilla",
            "data.name=ring8",
            "data.num_samples=256",
            "nets.latent_dim=4",
            "nets.generator.options.hidden=[16]",
            "nets.discriminator.options.hidden=[16]",
            "training.batch_size=32",
            "training.ema_decay=null",
            "logging.tensorboard=false",
            *extra,
        ]
    )


def test_gradient_accumulation_gives_the_same_update(tmp_path: Path) -> None:
    # MLPs have no batch norm, so the mean of 4 micro-batch losses of 8 equals the loss over 32, and the
    # noise is the same numbers (four randn(8, k) draws are one randn(32, k) draw): one SGD step on D must
    # land on the same weights either way.
    after = []
    for parts in (1, 4):
        trainer = Trainer(
            tiny(
                f"training.grad_accum={parts}", "optim.discriminator.name=sgd", "optim.discriminator.lr=0.5"
            ),
            tmp_path / str(parts),
        )
        before = [p.detach().clone() for p in trainer.recipe.parameters_of("discriminator")]
        trainer.train_step(trainer.loader.next())
        after.append([p.detach().clone() for p in trainer.recipe.parameters_of("discriminator")])
    assert not all(torch.equal(b, a) for b, a in zip(before, after[0], strict=True))
    for whole, accumulated in zip(*after, strict=True):
        assert torch.allclose(whole, accumulated, atol=1e-6)


def test_phase_intervals_schedule_the_steps(tmp_path: Path) -> None:
    trainer = Trainer(tiny("training.steps=6"), tmp_path)
    calls: list[tuple[int, str]] = []

    def counted(phase: Phase) -> Phase:
        def loss(batch):
            calls.append((trainer.step, phase.name))
            return phase.loss(batch)

        return Phase(phase.name, phase.group, loss, interval=3 if phase.name == "G" else 1)

    trainer.recipe.phases = tuple(counted(p) for p in trainer.recipe.phases)
    for _ in range(6):
        trainer.train_step(trainer.loader.next())
        trainer.step += 1
    assert [s for s, name in calls if name == "D"] == [0, 1, 2, 3, 4, 5]  # e.g. a WGAN critic every step
    assert [s for s, name in calls if name == "G"] == [0, 3]  # the generator every third step

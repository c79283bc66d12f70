"""Precision, memory layout, compile and fused optimizers: the switches do what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganforge.config import OptimizerConfig, resolve
from ganforge.data import BatchLoader, DataInfo, TensorData
from ganforge.engine import Trainer
from ganforge.engine.optim import make_optimizer
from ganforge.engine.precision import cpu_has_fast_bf16, resolve_precision
from ganforge.errors import UserError
from ganforge.nets.dcgan import DCGANDiscriminator
from ganforge.objectives.regularisers import gradient_penalty, r1_penalty
from test_resume import DCGAN as RESUME_DCGAN

DCGAN = [
    *RESUME_DCGAN[:6],  # the small DCGAN on digits of the resume tests
    "training.steps=2",
    "logging.tensorboard=false",
    "monitors.enabled=false",
]


def dcgan(tmp_path: Path, *overrides: str) -> Trainer:
    return Trainer(resolve(overrides=[*DCGAN, *overrides]), tmp_path)


def dtypes_seen(trainer: Trainer) -> dict[str, torch.dtype]:
    """Run one training step; return the output dtype of each net's last convolution in its own phase."""
    seen: dict[str, torch.dtype] = {}

    def recorder(name: str):
        def record(module: torch.nn.Module, args: object, out: torch.Tensor) -> None:
            if torch.is_grad_enabled():  # the pass whose gradients train this net
                seen.setdefault(name, out.dtype)

        return record

    hooks = [
        [m for m in net.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)][-1].register_forward_hook(
            recorder(name)
        )
        for name, net in trainer.recipe.nets.items()
    ]
    trainer.train_step(trainer.loader.next())
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_switch_sets_the_dtype_of_the_passes_and_keeps_weights_fp32(
    tmp_path: Path, precision: str, dtype: torch.dtype
) -> None:
    trainer = dcgan(tmp_path, f"training.precision={precision}")
    assert trainer.precision == precision
    assert dtypes_seen(trainer) == {"generator": dtype, "discriminator": dtype}
    for group, optimizer in trainer.optimizers.items():  # weights and Adam's moments stay fp32
        for param in trainer.recipe.parameters_of(group):
            assert param.dtype == torch.float32
            assert all(v.dtype == torch.float32 for k, v in optimizer.state[param].items() if k != "step")


def test_auto_precision_follows_the_hardware_and_the_data(tmp_path: Path) -> None:
    images = dcgan(tmp_path / "images")
    assert images.precision == ("bf16" if cpu_has_fast_bf16() else "fp32")
    points = Trainer(resolve(preset="vanilla-ring8", overrides=["training.steps=1"]), tmp_path / "points")
    assert points.precision == "fp32"  # coordinates need fp32's resolution
    assert resolve_precision("auto", torch.device("cpu"), "points") == "fp32"


def test_fp16_on_the_cpu_is_refused_with_the_field_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"training\.precision: fp16 needs a CUDA device"):
        dcgan(tmp_path, "training.precision=fp16")
    with pytest.raises(UserError, match=r"sampling\.precision: fp16 needs a CUDA device"):
        dcgan(tmp_path, "sampling.precision=fp16")


def test_bf16_penalties_match_fp32_within_tolerance() -> None:
    torch.manual_seed(0)
    critic = DCGANDiscriminator((1, 28, 28), width=16)
    real, fake = torch.rand(32, 1, 28, 28) * 2 - 1, torch.rand(32, 1, 28, 28) * 2 - 1
    values = {}
    for precision in ("fp32", "bf16"):
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(1))
            inputs = real.clone().requires_grad_(True)
            r1 = r1_penalty(critic(inputs), inputs)
        (gp + r1).backward()  # the double backward runs under autocast too
        grad = next(critic.parameters()).grad
        assert gp.dtype == r1.dtype == torch.float32 and torch.isfinite(grad).all()
        values[precision] = (gp.item(), r1.item(), grad.clone())
        critic.zero_grad()
    (gp32, r1_32, grad32), (gp16, r1_16, grad16) = values["fp32"], values["bf16"]
    assert gp16 == pytest.approx(gp32, rel=0.02) and r1_16 == pytest.approx(r1_32, rel=0.02)
    assert torch.nn.functional.cosine_similarity(grad16.flatten(), grad32.flatten(), dim=0) > 0.99


def test_a_bf16_run_with_penalties_trains_and_its_r1_stays_close_to_fp32(tmp_path: Path) -> None:
    penalties = ["stability.r1=1.0", "stability.r1_every=1", "stability.gradient_penalty=1.0"]
    stats = {}
    for precision in ("fp32", "bf16"):
        trainer = dcgan(tmp_path / precision, f"training.precision={precision}", *penalties)
        stats[precision] = trainer.train_step(trainer.loader.next())
    for key in ("r1", "gradient_penalty"):
        assert stats["bf16"][key].item() == pytest.approx(stats["fp32"][key].item(), rel=0.05), key


def test_channels_last_reaches_the_nets_and_the_batches(tmp_path: Path) -> None:
    on = dcgan(tmp_path / "on", "training.channels_last=true")
    auto = dcgan(tmp_path / "auto")  # None: on, since the DCGAN nets have convolutions
    off = dcgan(tmp_path / "off", "training.channels_last=false")
    for trainer, expected in ((on, True), (auto, True), (off, False)):
        assert (trainer.memory_format == torch.channels_last) is expected
        weight = trainer.recipe.nets["discriminator"].body[2].weight  # (32, 16, 4, 4): layouts differ
        assert weight.is_contiguous(memory_format=torch.channels_last) is expected
        assert weight.is_contiguous() is not expected
    points = Trainer(resolve(preset="vanilla-ring8", overrides=["training.steps=1"]), tmp_path / "points")
    assert points.memory_format == torch.contiguous_format  # MLPs: nothing to lay out
    rgb = TensorData(torch.rand(8, 3, 8, 8), None, DataInfo("rgb", "images", (3, 8, 8), None))
    loader = BatchLoader(rgb, 4, seed=0, device=torch.device("cpu"))
    loader.to_memory_format(torch.channels_last)
    batch = loader.next().x
    assert batch.is_contiguous(memory_format=torch.channels_last) and not batch.is_contiguous()


def test_adam_is_fused_where_torch_has_the_kernel() -> None:
    params = [torch.nn.Parameter(torch.randn(3, 3))]
    assert make_optimizer(params, OptimizerConfig(name="adam")).defaults["fused"] is True
    assert make_optimizer(params, OptimizerConfig(name="adamw")).defaults["fused"] is True
    assert make_optimizer(params, OptimizerConfig(name="sgd")).defaults.get("fused") in (None, False)


def test_compile_flag_compiles_the_nets_and_trains(tmp_path: Path) -> None:
    trainer = Trainer(
        resolve(
            preset="vanilla-ring8",
            overrides=[
                "training.compile=true",
                "training.steps=3",
                "training.batch_size=16",
                "nets.latent_dim=2",
            ],
        ),
        tmp_path,
    )
    assert all(net._compiled_call_impl is not None for net in trainer.recipe.nets.values())
    before = [p.detach().clone() for p in trainer.recipe.parameters()]
    trainer.train_step(trainer.loader.next())
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.recipe.parameters(), strict=True))
    assert set(trainer.recipe.nets.state_dict()) == set(
        Trainer(resolve(preset="vanilla-ring8"), tmp_path / "plain").recipe.nets.state_dict()
    )  # compiling leaves the checkpoint keys alone


def test_training_threads_are_given_back_when_fit_ends(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    trainer = Trainer(
        resolve(
            preset="vanilla-ring8",
            overrides=["training.steps=2", "training.threads=1", "logging.tensorboard=false"],
        ),
        tmp_path,
    )
    assert torch.get_num_threads() == 1
    trainer.fit()
    assert torch.get_num_threads() == before

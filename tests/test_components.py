"""One shared set of checks run over every registered net and every registered recipe.

A new net or recipe gets these for free: shapes, gradients, rebuilding from its saved config, one real
training step, and a checkpoint save/load round trip.
"""

from __future__ import annotations

import inspect
import json

import pytest
import torch

from ganforge.config import resolve
from ganforge.engine import Trainer
from ganforge.errors import UserError
from ganforge.nets import NETS
from ganforge.nets.conditional import AuxiliaryClassifier
from ganforge.objectives import OBJECTIVES
from ganforge.recipes import RECIPES

SHAPES = [(2,), (1, 8, 8), (1, 28, 28), (3, 32, 32)]
LATENT = 8
CLASSES = 3  # for conditional nets (those taking num_classes)


def is_conditional(name: str) -> bool:
    return "num_classes" in inspect.signature(NETS.get(name).__init__).parameters


def takes_noise(name: str) -> bool:
    """Return whether the net `name` is a generator of noise (not an image-to-image one like unet)."""
    return "latent_dim" in inspect.signature(NETS.get(name).__init__).parameters


def generator_inputs(net: torch.nn.Module, n: int) -> torch.Tensor:
    """Return n random inputs of a generator: latents, or source images for an image-to-image net."""
    return torch.randn(n, *getattr(net, "source_shape", (LATENT,)))


def build(name: str, shape: tuple[int, ...]) -> torch.nn.Module | None:
    """Return the net `name` for `shape` at its smallest sensible size, or None if it refuses the shape."""
    cls = NETS.get(name)
    convolutional = ("dcgan", "lapgan", "unet", "patchgan", "cyclegan", "srresnet", "srgan")
    small = {"width": 8} if any(family in name for family in convolutional) else {"hidden": (16, 16)}
    context = {"data_shape": shape, "latent_dim": LATENT} if takes_noise(name) else {"data_shape": shape}
    if is_conditional(name):
        context["num_classes"] = CLASSES
    try:
        return cls(**context, **small)
    except UserError:
        return None


def forward(name: str, net: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Run `net` on latents or samples, with labels 0, 1, 2, 0, ... for conditional nets that take them."""
    if not is_conditional(name) or isinstance(net, AuxiliaryClassifier):
        return net(inputs)
    return net(inputs, torch.arange(len(inputs)) % CLASSES)


def scores_shape(net: torch.nn.Module, n: int) -> tuple[int, ...]:
    """Return the shape of a discriminator's output: (n,) logits, (n, 1 + K) with class logits, or
    (n, patches) for a patch discriminator."""
    if hasattr(net, "patches"):
        return (n, net.patches)
    return (n, 1 + CLASSES) if isinstance(net, AuxiliaryClassifier) else (n,)


@pytest.mark.parametrize("name", NETS.names())
class TestEveryNet:
    def test_name_states_its_role(self, name: str) -> None:
        assert name.endswith(("_generator", "_discriminator"))

    def test_shapes_and_gradients(self, name: str) -> None:
        built = [(shape, net) for shape in SHAPES if (net := build(name, shape)) is not None]
        assert built, f"{name} accepts none of {SHAPES}"
        for shape, net in built:
            if name.endswith("_generator"):
                out = forward(name, net, generator_inputs(net, 5))
                assert out.shape == (5, *shape)
            else:
                out = forward(name, net, torch.randn(5, *shape))
                assert out.shape == scores_shape(net, 5)
            out.square().mean().backward()
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())

    def test_rebuilds_from_its_saved_config(self, name: str) -> None:
        shape = next(s for s in SHAPES if build(name, s) is not None)
        net = build(name, shape)
        config = json.loads(json.dumps(net.config))  # what a saved generator stores
        twin = NETS.get(name)(**config)
        twin.load_state_dict(net.state_dict())
        probe = generator_inputs(net, 3) if name.endswith("_generator") else torch.randn(3, *shape)
        net.eval(), twin.eval()
        assert torch.equal(forward(name, net, probe), forward(name, twin, probe))

    def test_rejects_a_wrong_input_shape(self, name: str) -> None:
        shape = next(s for s in SHAPES if build(name, s) is not None)
        net = build(name, shape)
        wrong = torch.randn(2, LATENT + 1) if name.endswith("_generator") else torch.randn(2, 7)
        with pytest.raises(ValueError, match="expected shape"):
            forward(name, net, wrong)


def tiny_config(recipe: str, objective: str, **extra: str):
    cls = RECIPES.get(recipe)
    overrides = [
        f"recipe.name={recipe}",
        f"objective.name={objective}",
        f"data.name={cls.example_data}",
        "data.num_samples=256",
        "nets.latent_dim=8",
        "training.batch_size=16",
        "training.steps=4",
        "training.ema_decay=0.9",
        "logging.tensorboard=false",
        "logging.checkpoint_every=2",
        "logging.sample_every=2",
        "logging.grid_size=4",
        *(f"{k}={v}" for k, v in extra.items()),
    ]
    if cls.example_data == "sr-photos":  # 32x32 patches, D from the first step (no MSE pre-training)
        overrides += [
            "data.image_size=32",
            "recipe.options.pretrain_steps=0",
            "nets.generator.options.blocks=1",
        ]
    if cls.example_data in ("digits", "mnist5k", "shapes", "edges-mnist5k", "mnist5k-restyle", "sr-photos"):
        overrides += ["nets.generator.options.width=8", "nets.discriminator.options.width=8"]
    else:
        overrides += ["nets.generator.options.hidden=[16,16]", "nets.discriminator.options.hidden=[16,16]"]
    return resolve(overrides=overrides)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("objective", OBJECTIVES.names())
@pytest.mark.parametrize("recipe", RECIPES.names())
class TestEveryRecipe:
    def test_groups_cover_every_net_once(self, recipe: str, objective: str, tmp_path) -> None:
        trainer = Trainer(tiny_config(recipe, objective), tmp_path)
        owners = [name for group in trainer.recipe.groups.values() for name in group]
        assert sorted(owners) == sorted(trainer.recipe.nets.keys())
        assert {phase.group for phase in trainer.recipe.phases} <= set(trainer.recipe.groups)

    def test_one_step_trains_every_group(self, recipe: str, objective: str, tmp_path) -> None:
        trainer = Trainer(tiny_config(recipe, objective), tmp_path)
        before = {name: snapshot(net) for name, net in trainer.recipe.nets.items()}
        stats = trainer.train_step(trainer.loader.next())
        assert stats and all(torch.isfinite(v) for v in stats.values())
        for name, net in trainer.recipe.nets.items():
            changed = [
                k
                for k, v in net.state_dict().items()
                if v.is_floating_point() and not torch.equal(v, before[name][k])
            ]
            assert changed, f"{name} did not change in one training step"
        # gradients are cleared after each phase, and only the phase's group was made trainable
        assert all(p.grad is None for p in trainer.recipe.parameters())

    def test_checkpoint_round_trip(self, recipe: str, objective: str, tmp_path) -> None:
        trainer = Trainer(tiny_config(recipe, objective), tmp_path)
        result = trainer.fit()
        assert result.step == 4 and result.reason == "finished"
        for expected in (
            "config.yaml",
            "metrics.jsonl",
            "generator.safetensors",
            "loss_curve.png",
            "report.html",
        ):
            assert (tmp_path / expected).is_file(), expected
        assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
            "step_00000002.png",
            "step_00000004.png",
        ]
        restored = Trainer.resume(tmp_path)
        assert restored.step == 4
        for name, net in trainer.recipe.nets.items():
            for key, value in net.state_dict().items():
                assert torch.equal(value, restored.recipe.nets[name].state_dict()[key]), f"{name}.{key}"
        for key, value in trainer.ema.state_dict().items():
            assert torch.equal(value, restored.ema.state_dict()[key])
        for group, optimizer in trainer.optimizers.items():
            saved, loaded = optimizer.state_dict(), restored.optimizers[group].state_dict()
            assert saved["param_groups"] == loaded["param_groups"]
            for index, state in saved["state"].items():
                for key, value in state.items():
                    assert torch.equal(value, loaded["state"][index][key])

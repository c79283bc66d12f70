"""The stability switches inside a real recipe: each one trains, does what it says, and refuses bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from ganforge.cli import main
from ganforge.config import resolve
from ganforge.engine import Trainer
from ganforge.engine import checkpoint as ckpt
from ganforge.errors import UserError
from ganforge.recipes.base import RecipeContext
from ganforge.recipes.stability import stability_for

TINY = {
    "vanilla": ["recipe=vanilla", "data.name=ring8", "data.num_samples=256", "nets.latent_dim=4"],
    "dcgan": ["recipe=dcgan", "data.name=digits", "nets.latent_dim=8"],
}
QUIET = ["logging.tensorboard=false", "training.batch_size=16", "monitors.enabled=false", "training.steps=4"]

SWITCHES = {  # name -> overrides; each must train and change both nets
    "lsgan": ["objective=lsgan"],
    "hinge+spectral_norm": ["objective=hinge", "stability.spectral_norm=true"],
    "wgan": ["objective=wgan", "stability.n_critic=2"],
    "wgan-gp": ["objective=wgan-gp", "stability.n_critic=2"],
    "relativistic": ["objective=relativistic"],
    "r1": ["stability.r1=1.0", "stability.r1_every=2"],
    "instance_noise+label_smoothing": ["stability.instance_noise=0.1", "stability.label_smoothing=0.1"],
    "minibatch_std+pac": ["stability.minibatch_std=4", "stability.pac=2"],
    "unrolled": ["stability.unrolled_steps=2"],
    "lecam+ttur+ema": ["stability.lecam=0.1", "optim.generator.lr=0.0001", "optim.discriminator.lr=0.0004"],
}


def trainer(tmp_path, recipe: str, *overrides: str) -> Trainer:
    return Trainer(resolve(overrides=[*TINY[recipe], *QUIET, *overrides]), tmp_path / "run")


def flat(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in net.parameters()])


def train(run: Trainer, steps: int) -> None:
    """Run training steps without fit()'s files (checkpoints, grids, report): the tests need the maths."""
    for _ in range(steps):
        run.train_step(run.loader.next())
        run.step += 1


@pytest.mark.parametrize("recipe", TINY)
@pytest.mark.parametrize("switch", SWITCHES)
def test_each_switch_trains_both_nets(tmp_path, recipe: str, switch: str) -> None:
    run = trainer(tmp_path, recipe, *SWITCHES[switch])
    before = {name: flat(net) for name, net in run.recipe.nets.items()}
    train(run, 4)
    for name, net in run.recipe.nets.items():
        after = flat(net)
        assert torch.isfinite(after).all(), name
        assert not torch.equal(before[name], after), f"{name} did not change under {switch}"


def test_diffaugment_trains_dcgan(tmp_path) -> None:
    run = trainer(tmp_path, "dcgan", "stability.diffaugment=[color,translation,cutout]")
    before = flat(run.recipe.generator)
    train(run, 2)
    assert not torch.equal(before, flat(run.recipe.generator))


def test_objective_defaults_apply_unless_the_config_sets_them() -> None:
    def settings(*overrides: str):
        config = resolve(overrides=[*TINY["vanilla"], *overrides])
        from ganforge.data import DataInfo

        return stability_for(RecipeContext(config, DataInfo("ring8", "points", (2,), 8)))

    assert settings("objective=wgan-gp").gradient_penalty == 10.0
    assert settings("objective=wgan-gp").n_critic == 5
    assert settings("objective=wgan-gp", "stability.n_critic=1").n_critic == 1
    assert settings("objective=wgan").weight_clip == 0.01
    assert settings("objective=nonsaturating").gradient_penalty == 0.0


def test_weight_clipping_bounds_the_critic(tmp_path) -> None:
    run = trainer(tmp_path, "vanilla", "objective=wgan", "stability.weight_clip=0.005")
    train(run, 2)
    weights = flat(run.recipe.nets["discriminator"])
    assert weights.abs().max() <= 0.005 + 1e-7


def test_generator_steps_every_n_critic_steps(tmp_path) -> None:
    run = trainer(tmp_path, "vanilla", "stability.n_critic=3")
    loader = run.loader
    changed = []
    for _ in range(6):
        before = flat(run.recipe.generator)
        stats = run.train_step(loader.next())
        run.step += 1
        changed.append(not torch.equal(before, flat(run.recipe.generator)))
        assert ("loss_G" in stats) == changed[-1]
    assert changed == [True, False, False, True, False, False]  # steps 0 and 3


def test_lazy_r1_runs_at_its_interval(tmp_path) -> None:
    run = trainer(tmp_path, "vanilla", "stability.r1=10", "stability.r1_every=4")
    seen = []
    for _ in range(8):
        seen.append("r1" in run.train_step(run.loader.next()))
        run.step += 1
    assert seen == [True, False, False, False, True, False, False, False]


def test_unrolled_generator_step_leaves_the_discriminator_alone(tmp_path) -> None:
    run = trainer(tmp_path, "dcgan", "stability.unrolled_steps=3")
    batch = run.loader.next()
    discriminator = run.recipe.nets["discriminator"]
    state = {k: v.clone() for k, v in discriminator.state_dict().items()}
    loss, _ = run.recipe.generator_loss(batch)
    loss.backward()
    for key, value in discriminator.state_dict().items():
        assert torch.equal(value, state[key]), key  # weights and batch-norm statistics untouched

    # The look-ahead changes G's gradient: compare with the plain non-saturating loss on the same noise.
    def generator_grad(steps: int) -> torch.Tensor:
        run.recipe.stability = type(run.recipe.stability)(
            **{**run.recipe.stability.__dict__, "unrolled_steps": steps}
        )
        run.recipe.generator.zero_grad()
        torch.manual_seed(0)
        run.recipe.generator_loss(batch)[0].backward()
        return torch.cat([p.grad.flatten() for p in run.recipe.generator.parameters()])

    assert not torch.allclose(generator_grad(0), generator_grad(3))


def test_a_simulated_step_is_a_first_adam_step(tmp_path) -> None:
    lr = 0.01
    run = trainer(
        tmp_path,
        "vanilla",
        "stability.unrolled_steps=1",
        f"optim.discriminator.lr={lr}",
        "optim.discriminator.betas=[0.5,0.99]",
    )
    recipe = run.recipe
    batch = run.loader.next()
    fake = recipe.generator(recipe.noise(len(batch), batch.x)).detach()
    simulated = recipe._unrolled(batch, fake)

    # The same step taken by torch's Adam on a copy of D, from fresh state.
    discriminator = recipe.nets["discriminator"]
    stepped = copy.deepcopy(discriminator).requires_grad_(True)
    adam = torch.optim.Adam(stepped.parameters(), lr=lr, betas=(0.5, 0.99))
    recipe.objective.discriminator_loss(stepped(batch.x), stepped(fake)).backward()
    grads = {name: p.grad.clone() for name, p in stepped.named_parameters()}
    adam.step()
    for (name, before), after in zip(discriminator.named_parameters(), stepped.parameters(), strict=True):
        assert torch.allclose(simulated[name], after, atol=1e-6), name
        moved = (before - simulated[name]).detach()
        clear = grads[name].abs() > 1e-5  # where |g| >> eps, Adam's first step is lr * sign(g)
        assert torch.allclose(moved[clear], lr * grads[name][clear].sign(), rtol=1e-3, atol=0), name

    # The recipe's running moments took in that gradient, as the optimizer's would have.
    moments = recipe.unrolled_moments
    assert int(moments.count) == 1
    for m, v, g in zip(moments.first, moments.second, grads.values(), strict=True):
        assert torch.allclose(m, 0.5 * g, atol=1e-7)
        assert torch.allclose(v, 0.01 * g * g, atol=1e-9)


def test_unrolled_steps_start_from_the_running_moments(tmp_path) -> None:
    run = trainer(tmp_path, "vanilla", "stability.unrolled_steps=2")
    train(run, 3)
    moments = run.recipe.unrolled_moments
    assert int(moments.count) == 3  # one update per G step
    ckpt.save_state(tmp_path / "state.safetensors", run.state_dict())
    fresh = trainer(tmp_path / "other", "vanilla", "stability.unrolled_steps=2")
    fresh.load_state_dict(ckpt.load_state(tmp_path / "state.safetensors"))
    for saved, loaded in zip(moments.second, fresh.recipe.unrolled_moments.second, strict=True):
        assert torch.equal(saved, loaded)

    # A simulated step continues those moments exactly as torch's Adam continues its state.
    recipe = run.recipe
    recipe.stability = type(recipe.stability)(**{**recipe.stability.__dict__, "unrolled_steps": 1})
    batch = run.loader.next()
    fake = recipe.generator(recipe.noise(len(batch), batch.x)).detach()
    discriminator = recipe.nets["discriminator"]
    stepped = copy.deepcopy(discriminator).requires_grad_(True)
    adam = torch.optim.Adam(stepped.parameters(), lr=recipe.stability.unrolled_lr, betas=(0.5, 0.999))
    for p, m, v in zip(stepped.parameters(), moments.first, moments.second, strict=True):
        adam.state[p] = {"step": torch.tensor(3.0), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    simulated = recipe._unrolled(batch, fake)
    recipe.objective.discriminator_loss(stepped(batch.x), stepped(fake)).backward()
    adam.step()
    for (name, before), after in zip(discriminator.named_parameters(), stepped.parameters(), strict=True):
        assert torch.allclose(simulated[name], after, atol=1e-6), name
        assert not torch.equal(before, after), name


def test_unrolled_lr_defaults_to_the_discriminators() -> None:
    def settings(*overrides: str):
        config = resolve(overrides=[*TINY["vanilla"], "stability.unrolled_steps=5", *overrides])
        from ganforge.data import DataInfo

        return stability_for(RecipeContext(config, DataInfo("ring8", "points", (2,), 8)))

    assert settings("optim.discriminator.lr=0.0003").unrolled_lr == 0.0003
    assert settings("optim.discriminator.lr=0.0003", "stability.unrolled_lr=0.01").unrolled_lr == 0.01
    assert settings("optim.discriminator.betas=[0.0,0.9]").unrolled_betas == (0.0, 0.9)


def test_instance_noise_anneals_to_zero(tmp_path) -> None:
    run = trainer(tmp_path, "vanilla", "stability.instance_noise=0.5", "stability.instance_noise_steps=100")
    x = torch.zeros(4096, 2)
    run.recipe.step = 0
    assert run.recipe.seen(x).std().item() == pytest.approx(0.5, rel=0.05)
    run.recipe.step = 50
    assert run.recipe.seen(x).std().item() == pytest.approx(0.25, rel=0.05)
    run.recipe.step = 100
    assert torch.equal(run.recipe.seen(x), x)


def test_lecam_anchors_survive_a_checkpoint(tmp_path) -> None:
    run = trainer(tmp_path, "vanilla", "stability.lecam=0.5")
    train(run, 3)
    anchors = run.recipe.lecam_anchors
    assert anchors is not None and float(anchors.real) != 0.0
    ckpt.save_state(tmp_path / "state.safetensors", run.state_dict())
    state = ckpt.load_state(tmp_path / "state.safetensors")
    fresh = trainer(tmp_path / "other", "vanilla", "stability.lecam=0.5")
    fresh.load_state_dict(state)
    assert torch.equal(fresh.recipe.lecam_anchors.real, anchors.real)
    assert torch.equal(fresh.recipe.lecam_anchors.fake, anchors.fake)


def test_spectral_norm_keeps_the_critic_near_one(tmp_path) -> None:
    run = trainer(tmp_path, "vanilla", "stability.spectral_norm=true")
    train(run, 10)
    for module in run.recipe.nets["discriminator"].modules():
        if isinstance(module, torch.nn.Linear):
            sigma = torch.linalg.matrix_norm(module.weight.detach(), ord=2).item()
            assert sigma == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["objective=wgan", "stability.label_smoothing=0.1"], "stability.label_smoothing"),
        (["stability.diffaugment=[color]"], "stability.diffaugment"),
        (["stability.pac=3"], "stability.pac"),
        (["stability.minibatch_std=5"], "stability.minibatch_std"),
        (["stability.pac=4", "stability.minibatch_std=8"], "stability.minibatch_std"),
    ],
)
def test_bad_combinations_name_the_field(tmp_path, overrides: list[str], field: str) -> None:
    with pytest.raises(UserError, match=field):
        trainer(tmp_path, "vanilla", *overrides)


def test_cli_refuses_a_bad_switch_with_one_line(tmp_path, capsys) -> None:
    argv = ["train", "--preset", "vanilla-ring8", "--out", str(tmp_path / "run"), "--set", "stability.pac=3"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: stability.pac") and "\n" not in err

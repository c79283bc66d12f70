"""The training monitors: each decision on synthetic traces, then whole runs with each policy."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from rich.console import Console
from torch import nn

from ganforge.cli.progress import ProgressBar
from ganforge.config import DataConfig, MonitorsConfig, RunConfig, resolve
from ganforge.data import load_dataset
from ganforge.data.toy import ring8_modes
from ganforge.engine import Trainer
from ganforge.engine.callbacks import Callback, MetricsLogger
from ganforge.engine.monitors import (
    DivergenceMonitor,
    ModeCollapseMonitor,
    OscillationMonitor,
    OverpoweredMonitor,
    count_reversals,
    default_monitors,
    gradient_spike_message,
    normalised_entropy,
    oscillation_message,
    overpowered_message,
)
from ganforge.report.curves import read_events, read_metrics

RING = torch.as_tensor(ring8_modes(), dtype=torch.float32)  # (8, 2) mode centres


class FakeTrainer:
    """What a monitor reads from a Trainer: the step, config, data, generator and noise, and `alert`."""

    def __init__(self, generator: nn.Module | None = None, data=None) -> None:
        self.step = 0
        self.config = RunConfig()
        self.data = data
        self.device = torch.device("cpu")
        self.recipe = SimpleNamespace(generator=generator, noise=self.noise)
        self.alerts: list[tuple[int, str, str]] = []

    def noise(self, n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.recipe.generator.latent_dim, generator=generator)

    def alert(self, monitor: str, message: str) -> None:
        self.alerts.append((self.step, monitor, message))


def drive(monitor, trace: list[dict[str, float]], trainer: FakeTrainer | None = None) -> FakeTrainer:
    """Feed `trace` (one dict of stats per step) to `monitor` as the Trainer would; return the trainer."""
    trainer = trainer or FakeTrainer()
    for stats in trace:
        trainer.step += 1
        monitor.on_step_end(trainer, {key: torch.tensor(value) for key, value in stats.items()})
    return trainer


# -- mode collapse --------------------------------------------------------------------------------------


class OneMode(nn.Module):
    """Every sample lands on the first mode of ring8, (1, 0), with the data's spread."""

    latent_dim = 2

    def __init__(self) -> None:
        super().__init__()
        self.sigma = nn.Parameter(torch.tensor(0.01))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return RING[0] + self.sigma * z


class RingMixture(nn.Module):
    """Samples the ring8 mixture itself: the first latent picks the mode, the others the offset."""

    latent_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.sigma = nn.Parameter(torch.tensor(0.01))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        mode = (torch.special.ndtr(z[:, 0]) * 8).long().clamp(max=7)
        return RING[mode] + self.sigma * z[:, 1:]


@pytest.fixture(scope="module")
def ring8():
    return load_dataset(DataConfig(name="ring8", num_samples=4000))


def test_mode_collapse_fires_on_one_mode_with_the_class_count_and_not_on_the_mixture(ring8) -> None:
    config = MonitorsConfig(every=10)
    healthy = drive(ModeCollapseMonitor(config), [{}] * 30, FakeTrainer(RingMixture(), ring8))
    assert healthy.alerts == []

    monitor = ModeCollapseMonitor(config)
    collapsed = drive(monitor, [{}] * 30, FakeTrainer(OneMode(), ring8))
    assert [(step, name) for step, name, _ in collapsed.alerts] == [(10, "mode_collapse")]  # once per episode
    message = collapsed.alerts[0][2]
    assert "samples in 1 of 8 classes" in message and "threshold 0.5" in message
    assert monitor.last is not None and monitor.last.spread_ratio < 0.05 and monitor.last.classes_hit == 1

    # The episode ends when the samples spread out again; a new collapse is a new alert.
    collapsed.recipe.generator = RingMixture()
    drive(monitor, [{}] * 10, collapsed)
    assert not monitor.firing
    collapsed.recipe.generator = OneMode()
    drive(monitor, [{}] * 10, collapsed)
    assert [step for step, _, _ in collapsed.alerts] == [10, 50]


def test_lopsided_classes_fire_even_when_the_spread_looks_fine(ring8) -> None:
    class TwoOpposite(RingMixture):  # modes 0 and 4 only: far apart, so the spread stays high
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return RING[torch.where(z[:, 0] > 0, 0, 4)] + self.sigma * z[:, 1:]

    monitor = ModeCollapseMonitor(MonitorsConfig(every=5))
    trainer = drive(monitor, [{}] * 5, FakeTrainer(TwoOpposite(), ring8))
    assert monitor.last.spread_ratio > 0.5  # not caught by the spread...
    assert len(trainer.alerts) == 1 and "samples in 2 of 8 classes" in trainer.alerts[0][2]  # ...but here


def test_a_generator_still_spreading_out_is_left_to_finish(ring8) -> None:
    class Shrunk(RingMixture):  # the ring drawn at radius `scale`: every class, spread about `scale`x
        scale = 0.1

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return super().forward(z) * self.scale

    generator = Shrunk()
    monitor = ModeCollapseMonitor(MonitorsConfig(every=1))
    trainer = FakeTrainer(generator, ring8)
    monitor.on_train_start(trainer)
    for scale in (0.2, 0.3, 0.4):  # narrow, but widening at every check
        generator.scale = scale
        drive(monitor, [{}], trainer)
    assert trainer.alerts == []
    drive(monitor, [{}], trainer)  # stuck at 0.4x
    assert [step for step, _, _ in trainer.alerts] == [4]


def test_normalised_entropy() -> None:
    assert normalised_entropy([5, 5, 5, 5]) == pytest.approx(1.0)
    assert normalised_entropy([7, 0, 0, 0]) == 0.0
    assert normalised_entropy([1, 1, 0, 0]) == pytest.approx(0.5)  # log 2 / log 4


def test_the_diversity_check_leaves_batch_norm_dropout_rng_and_modes_as_they_were(ring8) -> None:
    torch.manual_seed(0)
    generator = nn.Sequential(
        nn.Linear(3, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2)
    )
    generator.latent_dim = 3
    buffers = {name: b.clone() for name, b in generator.named_buffers()}
    rng = torch.get_rng_state()
    monitor = ModeCollapseMonitor(MonitorsConfig(every=1, samples=129))  # 3 batches of 43, not 64+64+1
    first = monitor.generated_features(FakeTrainer(generator, ring8))
    assert first.shape == (129, 2)
    for name, buffer in generator.named_buffers():
        assert torch.equal(buffer, buffers[name]), name
    assert torch.equal(torch.get_rng_state(), rng)  # dropout drew from the global stream, which is put back
    assert generator.training
    generator.eval()
    monitor.generated_features(FakeTrainer(generator, ring8))
    assert not generator.training and not generator[1].training
    # its own fixed noise: the same samples each time (with the same running statistics)
    generator.train()
    assert torch.equal(monitor.generated_features(FakeTrainer(generator, ring8)), first)


# -- D overpowering G -----------------------------------------------------------------------------------


def d_trace(steps: int, real: float, fake: float, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-0.01, 0.01, size=(steps, 2))
    return [{"D(x)": real + a, "D(G(z))": fake + b, "loss_D": 0.1} for a, b in jitter]


def test_overpowered_fires_after_a_sustained_window_once_per_episode() -> None:
    config = MonitorsConfig(window=100)  # chunks of 10 steps
    trace = d_trace(150, 0.985, 0.015) + d_trace(100, 0.6, 0.4) + d_trace(150, 0.985, 0.015)
    trainer = drive(OverpoweredMonitor(config), trace)
    assert [(step, name) for step, name, _ in trainer.alerts] == [(100, "overpowered"), (350, "overpowered")]
    assert "> 0.95" in trainer.alerts[0][2] and "< 0.05" in trainer.alerts[0][2]


def test_overpowered_stays_quiet_when_healthy_brief_or_without_probabilities() -> None:
    config = MonitorsConfig(window=100)
    assert drive(OverpoweredMonitor(config), d_trace(400, 0.7, 0.3)).alerts == []
    brief = []
    for _ in range(8):  # 50 steps of D winning, then 10 of a fair game: never a whole window
        brief += d_trace(50, 0.985, 0.015) + d_trace(10, 0.7, 0.3)
    assert drive(OverpoweredMonitor(config), brief).alerts == []
    wasserstein = [{"loss_D": -3.0, "loss_G": 2.0}] * 300
    assert drive(OverpoweredMonitor(config), wasserstein).alerts == []


def test_overpowered_message_needs_every_chunk_past_the_margin() -> None:
    assert "over the last 200 steps" in overpowered_message([0.99] * 10, [0.01] * 10, 0.05, 200)
    assert overpowered_message([0.99] * 9 + [0.9], [0.01] * 10, 0.05, 200) is None
    assert overpowered_message([0.99] * 10, [0.01] * 9 + [0.1], 0.05, 200) is None


# -- divergence -----------------------------------------------------------------------------------------


def norm_trace(values: np.ndarray, key: str = "grad_norm_D") -> list[dict[str, float]]:
    return [{key: float(v), "loss_D": 1.0} for v in values]


def test_divergence_fires_on_a_gradient_spike_and_on_a_non_finite_norm() -> None:
    rng = np.random.default_rng(0)
    norms = np.exp(rng.normal(0, 0.3, size=300))  # around 1, within a factor of about 2
    norms[205] = 60.0
    trainer = drive(DivergenceMonitor(MonitorsConfig(window=100)), norm_trace(norms))
    assert [(step, name) for step, name, _ in trainer.alerts] == [(210, "divergence")]  # end of its chunk
    assert "grad_norm_D jumped to 60" in trainer.alerts[0][2] and "threshold 20x" in trainer.alerts[0][2]

    norms[205] = 1.0
    norms[250] = math.inf
    trainer = drive(DivergenceMonitor(MonitorsConfig(window=100)), norm_trace(norms))
    assert len(trainer.alerts) == 1 and "grad_norm_D became inf" in trainer.alerts[0][2]


def test_divergence_stays_quiet_on_growing_norms_and_on_a_recovery_from_saturation() -> None:
    rng = np.random.default_rng(1)
    steps = np.arange(2000)
    growing = np.exp(steps / 500 + rng.normal(0, 0.5, size=len(steps)))  # x50 over the run, noisy
    assert drive(DivergenceMonitor(MonitorsConfig(window=100)), norm_trace(growing)).alerts == []
    # D saturates (its gradients shrink 200-fold), then wakes up when G recovers: back to its usual size
    saturated = np.concatenate([np.full(100, 5.0), np.full(1000, 0.025), np.full(100, 0.7)])
    saturated *= np.exp(rng.normal(0, 0.2, size=len(saturated)))
    assert drive(DivergenceMonitor(MonitorsConfig(window=100)), norm_trace(saturated)).alerts == []


def test_gradient_spike_message() -> None:
    assert gradient_spike_message("grad_norm_G", None, [100.0], 20) is None  # no level known yet
    assert gradient_spike_message("grad_norm_G", 1.0, [100.0], 20) is not None
    assert gradient_spike_message("grad_norm_G", 1.0, [19.0], 20) is None
    assert "nan" in gradient_spike_message("grad_norm_G", None, [1.0, math.nan], 20)


# -- oscillation ----------------------------------------------------------------------------------------


def test_count_reversals_ignores_moves_smaller_than_the_threshold() -> None:
    assert count_reversals([0, 1, 0, 1, 0], 0.5) == 3
    assert count_reversals([0, 1, 2, 3, 4], 0.5) == 0
    assert count_reversals([0, 0.2, 0, 0.2, 0], 0.5) == 0
    assert count_reversals([0, 1, 0.8, 1.5, 0], 0.5) == 1  # the dip of 0.2 is no turn


def loss_trace(values: np.ndarray) -> list[dict[str, float]]:
    return [{"loss_D": 1.3, "loss_G": float(v)} for v in values]


def test_oscillation_fires_on_a_wide_zigzag_and_not_on_healthy_losses() -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(600)
    config = MonitorsConfig(window=200)  # 10 chunks of 20 steps
    # loss_G swinging between 0.3 and 3 with a period of 4 chunks (80 steps), plus step noise
    swinging = 1.65 + 1.35 * np.sin(2 * np.pi * steps / 80) + rng.normal(0, 0.2, size=len(steps))
    trainer = drive(OscillationMonitor(config), loss_trace(swinging))
    assert [(step, name) for step, name, _ in trainer.alerts] == [(200, "oscillation")]
    assert trainer.alerts[0][2].startswith("loss_G swung between")

    slow = 0.7 + 0.5 * steps / 600 + rng.normal(0, 0.3, size=len(steps))  # a slow drift with noise
    rising = np.linspace(0.7, 3.0, len(steps)) + rng.normal(0, 0.05, size=len(steps))  # a steep trend
    bump = 1.0 + 2.0 * np.exp(-(((steps - 300) / 40) ** 2))  # one excursion and back
    for quiet in (slow, rising, bump):
        assert drive(OscillationMonitor(config), loss_trace(quiet)).alerts == []


def test_oscillation_skips_a_loss_that_crosses_zero() -> None:
    assert oscillation_message("loss_D", [-1.0, 1.0] * 5, 200) is None
    assert oscillation_message("loss_D", [0.3, 3.0] * 5, 200) is not None


def test_default_monitors_read_their_thresholds_from_the_config() -> None:
    config = MonitorsConfig(every=7, window=50, overpower_margin=0.1, gradient_spike=5.0)
    monitors = default_monitors(config)
    assert [type(m) for m in monitors] == [
        ModeCollapseMonitor,
        OverpoweredMonitor,
        DivergenceMonitor,
        OscillationMonitor,
    ]
    assert monitors[0].every == 7 and monitors[1].margin == 0.1 and monitors[2].spike == 5.0
    assert monitors[1].chunks.size == 5


# -- metrics.jsonl --------------------------------------------------------------------------------------


def test_metrics_logger_keeps_alerts_and_drops_later_stats_on_rollback(tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path, log_every=1, tensorboard=False)
    rows = [{"step": step, "loss_D": 1.0} for step in range(1, 11)]
    logger.path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    alert = SimpleNamespace(step=8, monitor="overpowered", message="D wins")
    logger.on_alert(None, alert)
    rollback = SimpleNamespace(from_step=10, to_step=5, alert=alert, lr_factor=0.5)
    logger.on_rollback(SimpleNamespace(step=5), rollback)
    assert [row["step"] for row in read_metrics(logger.path)] == [1, 2, 3, 4, 5]
    assert read_events(logger.path) == [
        {"step": 8, "alert": "overpowered", "message": "D wins"},
        {"step": 5, "event": "rollback", "from_step": 10, "monitor": "overpowered", "lr_factor": 0.5},
    ]


# -- whole runs -----------------------------------------------------------------------------------------


def tiny(*extra: str) -> RunConfig:
    """A vanilla GAN on ring8 whose generator cannot learn (learning rate 1e-8): it stays collapsed."""
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
            "optim.generator.lr=1e-8",
            "monitors.every=10",
            "monitors.samples=256",
            "logging.log_every=5",
            "logging.sample_every=1000",
            "logging.tensorboard=false",
            *extra,
        ]
    )


def lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_collapsed_run_logs_the_alert_with_its_step_and_shows_it(tmp_path: Path) -> None:
    screen = io.StringIO()
    bar = ProgressBar(Console(file=screen, force_terminal=True, width=250), refresh_s=0.0)
    result = Trainer(tiny("training.steps=25"), tmp_path, [bar]).fit()
    assert (result.reason, result.step) == ("finished", 25)
    alerts = [line for line in lines(tmp_path) if "alert" in line]
    assert [(a["step"], a["alert"]) for a in alerts] == [(10, "mode_collapse")]
    assert "sample spread" in alerts[0]["message"]
    assert "⚠ mode_collapse @ step 10" in screen.getvalue()
    # the report reads past the alert line, and lists it
    assert [row["step"] for row in read_metrics(tmp_path / "metrics.jsonl")] == [5, 10, 15, 20, 25]
    page = (tmp_path / "report.html").read_text()
    assert "<h3>Alerts</h3>" in page and alerts[0]["message"].replace("'", "&#x27;") in page


def test_policy_stop_ends_the_run_at_the_alert(tmp_path: Path) -> None:
    result = Trainer(tiny("training.steps=100", "monitors.policy=stop"), tmp_path).fit()
    assert (result.reason, result.step) == ("stopped", 10)
    assert [line["step"] for line in lines(tmp_path) if "alert" in line] == [10]


def test_policy_rollback_goes_back_with_lower_learning_rates_then_stops(tmp_path: Path) -> None:
    config = tiny(
        "training.steps=100",
        "monitors.policy=rollback",
        "monitors.max_rollbacks=2",
        "logging.checkpoint_every=5",
    )
    trainer = Trainer(config, tmp_path)
    result = trainer.fit()
    # checks at step 10 fail each time: back to step 5 (the checkpoint before the alert) twice, then stop
    assert (result.reason, result.step, trainer.rollbacks) == ("stopped", 10, 2)
    written = lines(tmp_path)
    events = [line for line in written if "event" in line]
    assert (
        events
        == [{"step": 5, "event": "rollback", "from_step": 10, "monitor": "mode_collapse", "lr_factor": 0.5}]
        * 2
    )
    assert [line["step"] for line in written if "alert" in line] == [10, 10, 10]
    stats_steps = [line["step"] for line in written if "alert" not in line and "event" not in line]
    assert stats_steps == sorted(set(stats_steps))  # the lines of undone steps were dropped
    # Lower than before. (Each rollback reloads the healthy checkpoint's own learning rates before lowering
    # them, so two rollbacks to the same checkpoint give x0.5, not x0.25.)
    for group, lr in (("generator", 1e-8), ("discriminator", 2e-4)):
        assert trainer.optimizers[group].param_groups[0]["lr"] <= lr * 0.5 * (1 + 1e-9)


class AlertOnce(Callback):
    """A stand-in monitor that sees trouble once, at step 12, and never again."""

    def __init__(self) -> None:
        self.rollbacks: list = []

    def on_step_end(self, trainer: Trainer, stats) -> None:
        if trainer.step == 12 and not self.rollbacks:
            trainer.alert("test", "trouble at 12")

    def on_rollback(self, trainer: Trainer, rollback) -> None:
        self.rollbacks.append(rollback)


def test_a_rollback_that_cures_the_run_lets_it_finish(tmp_path: Path) -> None:
    config = tiny(
        "training.steps=20",
        "monitors.enabled=false",
        "monitors.policy=rollback",
        "logging.checkpoint_every=5",
    )
    once = AlertOnce()
    trainer = Trainer(config, tmp_path, [once])
    result = trainer.fit()
    assert (result.reason, result.step, trainer.rollbacks) == ("finished", 20, 1)
    assert [(r.from_step, r.to_step, r.lr_factor) for r in once.rollbacks] == [(12, 10, 0.5)]
    assert trainer.optimizers["discriminator"].param_groups[0]["lr"] == pytest.approx(1e-4)
    assert [row["step"] for row in read_metrics(tmp_path / "metrics.jsonl")] == [5, 10, 15, 20]
    assert [e.get("alert") or e.get("event") for e in read_events(tmp_path / "metrics.jsonl")] == [
        "test",
        "rollback",
    ]


def test_monitors_do_not_change_training(tmp_path: Path) -> None:
    # DCGAN: batch norm in the generator, whose running statistics the checks must put back.
    common = [
        "recipe.name=dcgan",
        "data.name=digits",
        "nets.latent_dim=8",
        "nets.generator.options.width=8",
        "nets.discriminator.options.width=8",
        "training.batch_size=16",
        "training.steps=12",
        "training.ema_decay=null",
        "monitors.every=3",
        "monitors.samples=64",
        "monitors.window=10",
        "logging.tensorboard=false",
        "logging.sample_every=1000",
    ]
    weights = []
    for enabled in ("true", "false"):
        trainer = Trainer(resolve(overrides=[*common, f"monitors.enabled={enabled}"]), tmp_path / enabled)
        trainer.fit()
        weights.append(trainer.recipe.state_dict())
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key

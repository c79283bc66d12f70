"""Monitors: callbacks that watch a run for mode collapse, an overpowering D, divergence and oscillation.

Each monitor is a small Callback whose decision is a pure function over plain numbers, so it can be tested
on synthetic traces. The step stats arrive as tensors; the monitors keep them as tensors and move them to
the CPU in one transfer per chunk of `window // 10` steps, so a GPU is not synchronised every step (the
monitors share chunk boundaries, so only the first transfer of a chunk waits). The mode-collapse check
samples the generator every `every` steps from noise of its own, and leaves the training RNG streams and
the generator's batch-norm statistics exactly as they were: a run with monitors trains the same weights
as one without.

An alert goes through `trainer.alert(monitor, message)`, which logs it, tells the callbacks and applies
`monitors.policy`. Each monitor raises an alert once per episode: when its condition starts to hold, not at
every check while it lasts; once the condition clears, it can fire again. After a rollback every monitor
starts over with empty windows.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import MonitorsConfig
from ganforge.engine.callbacks import Callback, Stats
from ganforge.nets import translates

if TYPE_CHECKING:
    from ganforge.data import TensorData
    from ganforge.engine.trainer import Rollback, Trainer

CHUNKS_PER_WINDOW = 10  # a window of steps is read as this many chunk means (or maxima)
FEATURE_SIDE = 8  # images are average-pooled to at most 8x8 before distances are taken
MAX_PAIRWISE = 1024  # at most this many samples enter the mean pairwise distance (cost grows as n^2)
CLASS_MEAN_SAMPLES = 10_000  # real samples the class means are averaged over
RECOVERING = 0.05  # a spread or class-balance ratio that rose by more than this since the last check
HIT_SHARE = 0.01  # a class "got samples" when at least this share of the generated samples fall in it
SPIKE_LEVEL_NORMS = 20  # a gradient norm's typical level: the median of this many consecutive values
SWING_RATIO = 0.75  # oscillation: the chunk means span at least this share of their mean level
MIN_REVERSALS = 3  # ... and turn round at least this often in one window (1.5 cycles)
HYSTERESIS = 0.5  # a turn counts only after the series moves back by this share of its range
NOISE_SEED = 4321  # the mode-collapse check's own noise: the training RNG streams are not touched
REAL_SEED = 0  # which real samples form the reference


def chunk_steps(window: int) -> int:
    """Return the steps per chunk for a window of `window` steps (at least 1)."""
    return max(1, window // CHUNKS_PER_WINDOW)


def fire_once(trainer: Trainer, name: str, firing: set[str], key: str, message: str | None) -> None:
    """Alert when `key` starts showing trouble (`message` set); stay quiet until it clears, then re-arm."""
    if message is None:
        firing.discard(key)
        return
    if key not in firing:
        trainer.alert(name, message)
        firing.add(key)


class StatChunks:
    """Step stats kept as tensors and read back in one transfer per chunk of `size` steps."""

    def __init__(self, size: int, wanted: Callable[[str], bool]) -> None:
        self.size = size
        self.wanted = wanted  # which stat keys to keep
        self._pending: dict[str, list[torch.Tensor]] = {}

    def add(self, stats: Stats) -> None:
        for key, value in stats.items():
            if self.wanted(key):
                self._pending.setdefault(key, []).append(value.detach())

    def read(self) -> dict[str, list[float]]:
        """Return the values gathered since the last read, per key in step order, and forget them."""
        if not self._pending:
            return {}
        keys = list(self._pending)
        columns = [torch.stack(self._pending[key]).float().reshape(-1) for key in keys]
        flat = torch.cat(columns).tolist()  # the one transfer (and GPU sync) of the chunk
        self._pending = {}
        values, start = {}, 0
        for key, column in zip(keys, columns, strict=True):
            values[key] = flat[start : start + len(column)]
            start += len(column)
        return values

    def clear(self) -> None:
        self._pending = {}


# -- mode collapse --------------------------------------------------------------------------------------


def sample_features(x: torch.Tensor) -> torch.Tensor:
    """Return (N, F) features of samples `x` (N, ...): images average-pooled to at most 8x8, flattened."""
    x = x.float()
    if x.dim() == 4:  # (N, C, H, W) images
        side = (min(x.shape[-2], FEATURE_SIDE), min(x.shape[-1], FEATURE_SIDE))
        x = F.adaptive_avg_pool2d(x, side)
    return x.reshape(len(x), -1)


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Return the mean Euclidean distance between two distinct rows of `features` (N, F), N >= 2."""
    features = features[:MAX_PAIRWISE]
    n = len(features)
    # Exact differences, not the |a|^2 + |b|^2 - 2ab shortcut: its rounding error alone would give
    # identical samples (a collapsed generator) a spread.
    distances = torch.cdist(features, features, compute_mode="donot_use_mm_for_euclid_dist")
    return float(distances.sum() / (n * (n - 1)))


def class_histogram(features: torch.Tensor, class_means: torch.Tensor) -> torch.Tensor:
    """Return (K,) counts of the rows of `features` (N, F) by nearest class mean (K, F)."""
    nearest = torch.cdist(features, class_means).argmin(dim=1)
    return torch.bincount(nearest, minlength=len(class_means))


def normalised_entropy(counts: Sequence[float] | torch.Tensor) -> float:
    """Return the entropy of a histogram divided by log K: 1 when uniform over K bins, 0 in one bin."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if len(counts) < 2 or counts.sum() <= 0:
        return 0.0
    p = counts / counts.sum()
    p = p[p > 0]
    return max(0.0, float(-(p * p.log()).sum() / math.log(len(counts))))  # no -0.0


@dataclass(frozen=True)
class DiversityReference:
    """The real data's statistics in feature space, computed once per run."""

    spread: float  # mean pairwise distance between real samples
    class_means: torch.Tensor | None  # (K, F) feature mean of each class present; None without labels
    entropy: float | None  # normalised entropy of the real samples' histogram over those classes


def diversity_reference(data: TensorData, samples: int, device: torch.device) -> DiversityReference:
    """Return the spread and (for labelled data) the class means and class entropy of the real data."""
    generator = torch.Generator().manual_seed(REAL_SEED)
    picked = torch.randperm(len(data.x), generator=generator)[:samples]
    features = sample_features(data.x[picked].to(device))
    spread = mean_pairwise_distance(features)
    if data.y is None:
        return DiversityReference(spread, None, None)
    # The class means come from a larger sample; the entropy is measured on the same samples and by the
    # same nearest-mean rule as the generated ones, so a rule that confuses some classes confuses both.
    pool = torch.randperm(len(data.x), generator=generator)[:CLASS_MEAN_SAMPLES]
    pool_features, labels = sample_features(data.x[pool].to(device)), data.y[pool].to(device)
    present = labels.unique()
    class_means = torch.stack([pool_features[labels == label].mean(0) for label in present])
    if len(class_means) < 2:
        return DiversityReference(spread, None, None)
    entropy = normalised_entropy(class_histogram(features, class_means))
    return DiversityReference(spread, class_means, entropy)


@dataclass(frozen=True)
class DiversityCheck:
    """Generated samples measured against the reference."""

    spread_ratio: float  # mean pairwise distance of generated samples / that of real ones
    balance_ratio: float | None  # their class entropy / that of real ones; None without classes
    classes_hit: int | None  # classes holding at least HIT_SHARE of the generated samples
    classes: int | None  # classes in the data


def check_diversity(fake_features: torch.Tensor, reference: DiversityReference) -> DiversityCheck:
    """Return how generated `fake_features` (N, F) compare with the real data's reference."""
    spread_ratio = mean_pairwise_distance(fake_features) / max(reference.spread, 1e-12)
    if reference.class_means is None or not reference.entropy:
        return DiversityCheck(spread_ratio, None, None, None)
    counts = class_histogram(fake_features, reference.class_means)
    hit = int((counts >= max(1.0, HIT_SHARE * len(fake_features))).sum())
    balance_ratio = normalised_entropy(counts) / reference.entropy
    return DiversityCheck(spread_ratio, balance_ratio, hit, len(counts))


def mode_collapse_message(check: DiversityCheck, diversity_ratio: float, class_balance: float) -> str | None:
    """Return the alert for `check` when the spread or the class balance is too low, else None."""
    spread_low = check.spread_ratio < diversity_ratio
    lopsided = check.balance_ratio is not None and check.balance_ratio < class_balance
    if not (spread_low or lopsided):
        return None
    message = f"sample spread {check.spread_ratio:.2f}x the data's (threshold {diversity_ratio:g})"
    if check.balance_ratio is not None:
        message += (
            f"; samples in {check.classes_hit} of {check.classes} classes, class entropy "
            f"{check.balance_ratio:.2f}x the data's (threshold {class_balance:g})"
        )
    return message


@contextlib.contextmanager
def state_kept(net: nn.Module, device: torch.device) -> Iterator[None]:
    """Run a block on `net` and put back its buffers (batch-norm statistics), train/eval modes and the
    global RNG streams (dropout, noise inputs) afterwards."""
    buffers = [(buffer, buffer.clone()) for buffer in net.buffers()]
    modes = [(module, module.training) for module in net.modules()]
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            yield
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        for module, training in modes:
            module.training = training


def recovering(previous: DiversityCheck | None, current: DiversityCheck) -> bool:
    """Return whether the spread or the class balance rose by more than RECOVERING since `previous`."""
    if previous is None:
        return False
    if current.spread_ratio - previous.spread_ratio > RECOVERING:
        return True
    balances = (current.balance_ratio, previous.balance_ratio)
    return None not in balances and balances[0] - balances[1] > RECOVERING


class ModeCollapseMonitor(Callback):
    """Every `every` steps: the spread of `samples` generated samples in feature space against the real
    data's, and for labelled data their histogram over the classes (each sample goes to the nearest real
    class mean; for the Gaussian mixtures the class means are the modes).

    It alerts when either is too low and not rising (by more than RECOVERING since the previous check, or
    since the start of training for the first one): a generator that is still spreading out from its
    initial, narrow output is left to finish; one that stays narrow, or narrows, is reported.

    The generator runs as it does in training, in train mode, so batch norm normalises by the statistics of
    each batch (of `training.batch_size` samples, as in training). Its running statistics are put back
    afterwards; eval mode would judge it by running averages that lag behind the weights.
    """

    name = "mode_collapse"

    def __init__(self, config: MonitorsConfig) -> None:
        self.every = config.every
        self.samples = config.samples
        self.diversity_ratio = config.diversity_ratio
        self.class_balance = config.class_balance
        self.reference: DiversityReference | None = None
        self.firing = False  # an episode is under way: no new alert until it clears
        self.last: DiversityCheck | None = None  # the latest check

    def generated_features(self, trainer: Trainer) -> torch.Tensor:
        """Return (samples, F) features of samples from the training generator (its state kept)."""
        generator = trainer.recipe.generator
        probe = next(generator.parameters())
        noise = torch.Generator(probe.device).manual_seed(NOISE_SEED)
        # Batches of about the training batch size, all nearly equal (batch norm fails on a batch of 1).
        batches = -(-self.samples // trainer.config.training.batch_size)
        sizes = [len(part) for part in torch.arange(self.samples).tensor_split(batches)]
        parts = []
        with state_kept(generator, probe.device):
            generator.train()
            for size in sizes:
                parts.append(sample_features(generator(trainer.recipe.noise(size, probe, noise))))
        return torch.cat(parts)

    def check(self, trainer: Trainer) -> DiversityCheck:
        """Measure the generator now; the result is also kept as `last`."""
        if self.reference is None:
            self.reference = diversity_reference(trainer.data, self.samples, trainer.device)
        self.last = check_diversity(self.generated_features(trainer), self.reference)
        return self.last

    def on_train_start(self, trainer: Trainer) -> None:
        if translates(trainer.recipe.generator):  # pix2pix: no noise to collapse, images unlike the pairs
            return
        self.check(trainer)  # where the generator starts from: the first check compares with it

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None:
        if trainer.step % self.every or translates(trainer.recipe.generator):
            return
        previous, current = self.last, self.check(trainer)
        message = mode_collapse_message(current, self.diversity_ratio, self.class_balance)
        if message is None:
            self.firing = False
        elif not self.firing and not recovering(previous, current):
            trainer.alert(self.name, message)
            self.firing = True

    def on_rollback(self, trainer: Trainer, rollback: Rollback) -> None:
        self.firing = False  # the reference stays: the data did not change
        self.check(trainer)  # the healthy checkpoint's generator, for the next check to compare with


# -- the discriminator overpowering the generator -------------------------------------------------------


def overpowered_message(
    real: Sequence[float], fake: Sequence[float], margin: float, steps: int
) -> str | None:
    """Return the alert when every chunk mean of D(x) (`real`) is above 1 - margin and every one of D(G(z))
    (`fake`) below margin, over the last `steps` steps."""
    if not real or not fake:
        return None
    if min(real) > 1 - margin and max(fake) < margin:
        return (
            f"D(x) {statistics.fmean(real):.3f} and D(G(z)) {statistics.fmean(fake):.3f} on average over "
            f"the last {steps} steps (thresholds > {1 - margin:g} and < {margin:g}): D wins easily"
        )
    return None


class OverpoweredMonitor(Callback):
    """D(x) near 1 and D(G(z)) near 0 for `window` steps: D separates real from fake so well that the
    generator gets little gradient. Silent for objectives that log no probabilities (Wasserstein)."""

    name = "overpowered"
    keys = ("D(x)", "D(G(z))")

    def __init__(self, config: MonitorsConfig) -> None:
        self.margin = config.overpower_margin
        self.window_steps = config.window
        self.chunks = StatChunks(chunk_steps(config.window), lambda key: key in self.keys)
        self.means: dict[str, deque[float]] = {key: deque(maxlen=CHUNKS_PER_WINDOW) for key in self.keys}
        self.firing = False

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None:
        self.chunks.add(stats)
        if trainer.step % self.chunks.size:
            return
        values = self.chunks.read()
        if not all(values.get(key) for key in self.keys):
            return
        for key in self.keys:
            self.means[key].append(statistics.fmean(values[key]))
        real, fake = self.means["D(x)"], self.means["D(G(z))"]
        full = len(real) == real.maxlen
        steps = len(real) * self.chunks.size
        message = overpowered_message(list(real), list(fake), self.margin, steps) if full else None
        if message is not None and not self.firing:
            trainer.alert(self.name, message)
        self.firing = message is not None

    def on_rollback(self, trainer: Trainer, rollback: Rollback) -> None:
        self.chunks.clear()
        for means in self.means.values():
            means.clear()
        self.firing = False


# -- divergence -----------------------------------------------------------------------------------------


def gradient_spike_message(key: str, level: float | None, chunk: Sequence[float], spike: float) -> str | None:
    """Return the alert when `chunk` holds a non-finite gradient norm, or one above `spike` times `level`
    (the highest typical level of this norm so far; None until one is known); else None."""
    bad = [value for value in chunk if not math.isfinite(value)]
    if bad:
        return f"{key} became {bad[0]}"
    if level is None or not chunk:
        return None
    worst = max(chunk)
    if worst > spike * level:
        return (
            f"{key} jumped to {worst:.3g}, {worst / max(level, 1e-30):.0f}x its highest typical level so far "
            f"{level:.3g} (threshold {spike:g}x)"
        )
    return None


class DivergenceMonitor(Callback):
    """A gradient norm (`grad_norm_*`) that turns NaN or infinite, or jumps above `gradient_spike` times
    its highest typical level so far: the largest median of SPIKE_LEVEL_NORMS consecutive values seen
    at a chunk's end. (A non-finite loss already stops the Trainer.)

    The highest level, not the latest: when D saturates its gradients shrink a hundredfold for a while,
    and their return to the run's usual size as the generator recovers is no explosion. (Compared with
    the running median, the dcgan-mnist5k preset raised exactly that false alarm.)
    """

    name = "divergence"

    def __init__(self, config: MonitorsConfig) -> None:
        self.spike = config.gradient_spike
        self.chunks = StatChunks(chunk_steps(config.window), lambda key: key.startswith("grad_norm_"))
        self.recent: dict[str, deque[float]] = {}  # the latest SPIKE_LEVEL_NORMS finite norms of each key
        self.level: dict[str, float] = {}  # the highest median of `recent` seen so far
        self.firing: set[str] = set()  # keys whose episode is under way

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None:
        self.chunks.add(stats)
        if trainer.step % self.chunks.size:
            return
        for key, chunk in self.chunks.read().items():
            message = gradient_spike_message(key, self.level.get(key), chunk, self.spike)
            fire_once(trainer, self.name, self.firing, key, message)
            recent = self.recent.setdefault(key, deque(maxlen=SPIKE_LEVEL_NORMS))
            recent.extend(value for value in chunk if math.isfinite(value))
            if len(recent) == recent.maxlen:
                self.level[key] = max(self.level.get(key, 0.0), statistics.median(recent))

    def on_rollback(self, trainer: Trainer, rollback: Rollback) -> None:
        self.chunks.clear()
        self.recent.clear()
        self.level.clear()
        self.firing.clear()


# -- oscillation ----------------------------------------------------------------------------------------


def count_reversals(values: Sequence[float], threshold: float) -> int:
    """Return how often `values` turn round, counting a turn only once the series has moved back from its
    latest extreme by at least `threshold` (so noise smaller than that makes no turns)."""
    if len(values) < 2 or threshold <= 0:
        return 0
    direction = 0  # +1 rising, -1 falling, 0 until the series has first moved by `threshold`
    low = high = extreme = values[0]
    reversals = 0
    for value in values[1:]:
        if direction == 0:
            low, high = min(low, value), max(high, value)
            if value - low >= threshold:
                direction, extreme = 1, value
            elif high - value >= threshold:
                direction, extreme = -1, value
        elif direction * (value - extreme) > 0:
            extreme = value  # still going the same way
        elif abs(value - extreme) >= threshold:
            direction, extreme = -direction, value
            reversals += 1
    return reversals


def oscillation_message(key: str, values: Sequence[float], steps: int) -> str | None:
    """Return the alert when the chunk means `values` of a loss over `steps` steps swing widely back and
    forth: their range is at least SWING_RATIO times their mean level, and they turn round at least
    MIN_REVERSALS times by half that range. A slow trend (no turns), noise around a steady level (a small
    range) or a single bump (too few turns) stays quiet. A series that crosses zero (a Wasserstein loss)
    has no level to compare with and is skipped."""
    if len(values) < 3:
        return None
    low, high = min(values), max(values)
    if low < 0 < high or not all(math.isfinite(v) for v in values):
        return None
    level = statistics.fmean(abs(v) for v in values)  # (a median would jump between the peaks and troughs)
    if level <= 0 or (high - low) < SWING_RATIO * level:
        return None
    reversals = count_reversals(values, HYSTERESIS * (high - low))
    if reversals < MIN_REVERSALS:
        return None
    return (
        f"{key} swung between {low:.3g} and {high:.3g} ({(high - low) / level:.2f}x its mean; threshold "
        f"{SWING_RATIO:g}x) and turned {reversals} times in {steps} steps"
    )


class OscillationMonitor(Callback):
    """Chunk means of each loss over the last `window` steps that zig-zag widely (see
    `oscillation_message`): the two players chase each other instead of settling."""

    name = "oscillation"

    def __init__(self, config: MonitorsConfig) -> None:
        self.chunks = StatChunks(chunk_steps(config.window), lambda key: key.startswith("loss_"))
        self.means: dict[str, deque[float]] = {}
        self.firing: set[str] = set()

    def on_step_end(self, trainer: Trainer, stats: Stats) -> None:
        self.chunks.add(stats)
        if trainer.step % self.chunks.size:
            return
        for key, chunk in self.chunks.read().items():
            means = self.means.setdefault(key, deque(maxlen=CHUNKS_PER_WINDOW))
            means.append(statistics.fmean(chunk))
            message = None
            if len(means) == means.maxlen:
                message = oscillation_message(key, list(means), len(means) * self.chunks.size)
            fire_once(trainer, self.name, self.firing, key, message)

    def on_rollback(self, trainer: Trainer, rollback: Rollback) -> None:
        self.chunks.clear()
        self.means.clear()
        self.firing.clear()


def default_monitors(config: MonitorsConfig) -> list[Callback]:
    """Return the monitors a run gets by default, each reading its thresholds from `config`."""
    return [
        ModeCollapseMonitor(config),
        OverpoweredMonitor(config),
        DivergenceMonitor(config),
        OscillationMonitor(config),
    ]

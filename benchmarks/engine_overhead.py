"""What the engine costs: DCGAN-28 training throughput through ganforge's Trainer and through a plain loop.

Both loops train the same nets (ganforge's dcgan_generator and dcgan_discriminator on 1x28x28 mnist5k images)
with the same Adam settings, the same non-saturating losses, a fresh z for each phase and the same
requires_grad switching. The plain loop is what a PyTorch user would write by hand, with no logging; so the
ratio Trainer / plain is the price of everything the engine adds (phases, callbacks, stats, finiteness checks,
schedules, the batch loader). The target is a ratio of at least 0.95.

Throughput is real images per second: batch size x iterations / seconds, where one iteration is one D step
and one G step. The Trainer is timed through `fit()`, from the end of the last warm-up step to the end of the
last timed step, so the final checkpoint, sample grid and report that `fit()` writes are left out. Trainer and
plain measurements alternate over several rounds to even out drift in the machine's speed; medians are shown.

    .venv/bin/python benchmarks/engine_overhead.py [--steps 30] [--warmup 5] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.config import DataConfig, resolve
from ganforge.data import load_dataset
from ganforge.engine import Callback, Trainer
from ganforge.nets import build_net

# Written once here and handed to both loops, so the Trainer's preset cannot drift away from the plain loop.
IMAGE_SHAPE = (1, 28, 28)  # (C, S, S) of mnist5k
LATENT_DIM = 100
LR = 2e-4
BETAS = (0.5, 0.999)
SEED = 0  # both loops seed torch with it before building the nets, so they start from the same weights
TARGET = 0.95  # Trainer / plain


class StepClock(Callback):
    """Notes the time at the end of step `start` and of step `stop` (steps counted from 1)."""

    def __init__(self, start: int, stop: int) -> None:
        self.start = start
        self.stop = stop
        self.started: float | None = None
        self.stopped: float | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        if self.start == 0:  # no warm-up: the clock starts with the loop
            self.started = time.perf_counter()

    def on_step_end(self, trainer: Trainer, stats: dict[str, torch.Tensor]) -> None:
        if trainer.step == self.start:
            self.started = time.perf_counter()
        elif trainer.step == self.stop:
            self.stopped = time.perf_counter()

    def seconds(self) -> float:
        if self.started is None or self.stopped is None:
            raise RuntimeError("the Trainer stopped before the timed steps were done")
        return self.stopped - self.started


def trainer_config(args: argparse.Namespace):
    never = 10**9  # logging, sample grids and checkpoints stay out of the timed steps
    overrides = [
        "recipe=dcgan",
        "objective=nonsaturating",
        "data.name=mnist5k",
        f"nets.latent_dim={LATENT_DIM}",
        f"nets.generator.options.width={args.width}",
        f"nets.discriminator.options.width={args.width}",
        *(
            f"optim.{group}.{key}={value}"
            for group in ("generator", "discriminator")
            for key, value in (("name", "adam"), ("lr", LR), ("betas", list(BETAS)), ("schedule", "constant"))
        ),
        f"training.steps={args.warmup + args.steps}",
        f"training.batch_size={args.batch_size}",
        "training.grad_accum=1",
        "training.ema_decay=null",  # the plain loop keeps no EMA of G
        f"training.seed={SEED}",
        "training.device=cpu",
        "training.precision=fp32",  # the plain loop is fp32 and contiguous: compare like with like
        "training.channels_last=false",
        f"training.threads={args.threads if args.threads else 'null'}",
        "logging.tensorboard=false",
        f"logging.log_every={never}",
        f"logging.sample_every={never}",
        f"logging.checkpoint_every={never}",
    ]
    return resolve(preset="dcgan-mnist5k", overrides=overrides)


def trainer_images_per_s(args: argparse.Namespace) -> float:
    """Return images/s of `Trainer.fit()` over `args.steps` steps after `args.warmup` warm-up steps."""
    clock = StepClock(args.warmup, args.warmup + args.steps)
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as run_dir:
        Trainer(trainer_config(args), Path(run_dir), callbacks=[clock]).fit()
    return args.batch_size * args.steps / clock.seconds()


class PlainLoop:
    """A hand-written PyTorch loop doing the Trainer's maths, with nothing else."""

    def __init__(self, args: argparse.Namespace, images: torch.Tensor) -> None:
        torch.manual_seed(SEED)
        self.generator = build_net(
            "dcgan_generator", {"width": args.width}, "g", data_shape=IMAGE_SHAPE, latent_dim=LATENT_DIM
        )
        self.discriminator = build_net(
            "dcgan_discriminator", {"width": args.width}, "d", data_shape=IMAGE_SHAPE
        )
        # fused, as the Trainer's make_optimizer builds Adam
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=LR, betas=BETAS, fused=True)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=LR, betas=BETAS, fused=True)
        self.images = images
        self.batch_size = args.batch_size

    def step(self) -> None:
        generator, discriminator, batch_size = self.generator, self.discriminator, self.batch_size
        real = self.images[torch.randint(len(self.images), (batch_size,))]  # (B, 1, 28, 28)

        # D step: -log D(x) - log(1 - D(G(z))), with G frozen.
        generator.requires_grad_(False)
        discriminator.requires_grad_(True)
        with torch.no_grad():
            fake = generator(torch.randn(batch_size, LATENT_DIM))
        d_loss = F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake)).mean()
        d_loss.backward()
        self.d_optimizer.step()
        self.d_optimizer.zero_grad(set_to_none=True)

        # G step: -log D(G(z)) on fresh noise, with D frozen.
        generator.requires_grad_(True)
        discriminator.requires_grad_(False)
        g_loss = F.softplus(-discriminator(generator(torch.randn(batch_size, LATENT_DIM)))).mean()
        g_loss.backward()
        self.g_optimizer.step()
        self.g_optimizer.zero_grad(set_to_none=True)


def plain_images_per_s(args: argparse.Namespace, images: torch.Tensor) -> float:
    """Return images/s of the plain loop over `args.steps` steps after `args.warmup` warm-up steps."""
    loop = PlainLoop(args, images)
    for _ in range(args.warmup):
        loop.step()
    started = time.perf_counter()
    for _ in range(args.steps):
        loop.step()
    return args.batch_size * args.steps / (time.perf_counter() - started)


def interleaved_step_ms(args: argparse.Namespace, images: torch.Tensor) -> tuple[float, float]:
    """Return median ms per step of Trainer.train_step and of the plain loop, timed turn about in one process.

    Taking the two in turns, step by step, cancels the slow drifts of a shared machine that separate runs see.
    """
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as run_dir:
        trainer = Trainer(trainer_config(args), Path(run_dir))
        loop = PlainLoop(args, images)

        def trainer_step() -> None:
            trainer.train_step(trainer.loader.next())
            trainer.step += 1

        for _ in range(args.warmup):
            trainer_step()
            loop.step()
        times: dict[str, list[float]] = {"trainer": [], "plain": []}
        for _ in range(args.steps):
            for name, step in (("trainer", trainer_step), ("plain", loop.step)):
                started = time.perf_counter()
                step()
                times[name].append(1000 * (time.perf_counter() - started))
    return statistics.median(times["trainer"]), statistics.median(times["plain"])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed iterations per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations before each measurement")
    parser.add_argument("--rounds", type=int, default=5, help="Trainer/plain measurement pairs")
    parser.add_argument("--batch-size", type=int, default=128, help="real images per iteration")
    parser.add_argument("--width", type=int, default=64, help="DCGAN width of G and D")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args(argv)
    for name in ("steps", "rounds", "batch_size", "width"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or (args.threads is not None and args.threads < 1):
        parser.error("--warmup must be at least 0 and --threads at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    images = load_dataset(DataConfig(name="mnist5k")).x  # (5000, 1, 28, 28) in [-1, 1]

    trainer_rates: list[float] = []
    plain_rates: list[float] = []
    for round_number in range(1, args.rounds + 1):
        # Alternating the two loops spreads any slow phase of the machine over both of them.
        trainer_rates.append(trainer_images_per_s(args))
        plain_rates.append(plain_images_per_s(args, images))
        print(
            f"round {round_number}/{args.rounds}: Trainer {trainer_rates[-1]:.1f} images/s, "
            f"plain {plain_rates[-1]:.1f} images/s",
            file=sys.stderr,
            flush=True,
        )

    paired = [t / p for t, p in zip(trainer_rates, plain_rates, strict=True)]
    ratio = statistics.median(paired)
    trainer_ms, plain_ms = interleaved_step_ms(args, images)
    shape = "x".join(map(str, IMAGE_SHAPE))
    print(
        f"DCGAN-28 ({shape}, batch {args.batch_size}, width {args.width}), fp32 CPU: "
        f"{args.steps} timed steps after {args.warmup} warm-up, {args.rounds} rounds"
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_model()} "
        f"({os.cpu_count()} logical CPUs), Python {platform.python_version()}"
    )
    print()
    print("| loop | images/s (median) | min | max |")
    print("|---|---:|---:|---:|")
    for name, rates in (("ganforge Trainer", trainer_rates), ("plain PyTorch", plain_rates)):
        print(f"| {name} | {statistics.median(rates):.1f} | {min(rates):.1f} | {max(rates):.1f} |")
    print()
    print(
        f"Trainer / plain, median of the per-round ratios: {ratio:.3f}x "
        f"({'meets' if ratio >= TARGET else 'misses'} the target of >= {TARGET}x)"
    )
    print()
    print(f"Interleaved step by step in one process ({args.steps} steps each, median):")
    print("| loop | ms per step | images/s |")
    print("|---|---:|---:|")
    for name, ms in (("ganforge Trainer.train_step", trainer_ms), ("plain PyTorch", plain_ms)):
        print(f"| {name} | {ms:.1f} | {1000 * args.batch_size / ms:.1f} |")
    print()
    interleaved = plain_ms / trainer_ms
    print(
        f"Trainer / plain, interleaved: {interleaved:.3f}x "
        f"({'meets' if interleaved >= TARGET else 'misses'} the target of >= {TARGET}x)"
    )


if __name__ == "__main__":
    main()

"""Training speed: bf16 autocast, channels_last, torch.compile and processes; the Trainer and plain loops.

For each model (DCGAN-28 on 1x28x28 mnist5k, DCGAN-64 RGB on 3x64x64 stacked-mnist5k) and each variant (fp32
eager; bf16; bf16 + channels_last; compiled bf16 + channels_last) this trains the same GAN twice: through
ganforge's `Trainer.train_step` and through a plain PyTorch loop written here (the same registered nets, fused
Adam, the same non-saturating losses, `torch.autocast` and channels_last where the variant has them). All
loops of a model live in one process and take their steps in turns, round after round, so that the drift of
a shared machine hits all of them alike (in a new random order each round); the tables show medians over
rounds, and ratios are medians of ratios taken within a round.

Throughput is real images per second (batch size / seconds per iteration; one iteration is one D step and one
G step). Achieved FLOP/s: the convolution FLOPs of one iteration (torch.utils.flop_counter, counted once in
fp32) times iterations per second, against the torch.mm peak of the same dtype, timed in the same rounds.
The processes table runs `ganforge train` with 1 process (all threads) and with `--nproc 2` (half the threads
each) and reads steps/s from the run's metrics.jsonl.

Targets: bf16 >= 2x fp32 images/s on DCGAN-28 (the best bf16 row of the Trainer); Trainer >= 0.95x plain.

    .venv/bin/python benchmarks/speed.py [--models dcgan28,dcgan64] [--steps 30] [--warmup 5] [--threads N]
                                         [--skip-distributed] [--skip-compile]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch._inductor.utils import fresh_cache
from torch.utils.flop_counter import FlopCounterMode

from engine_overhead import cpu_model  # the sibling benchmark script (benchmarks/ is on sys.path)
from ganforge.config import RunConfig, resolve
from ganforge.data import load_dataset
from ganforge.engine import Trainer
from ganforge.engine.precision import cpu_has_fast_bf16
from ganforge.nets import build_net

LATENT_DIM = 100
LR = 2e-4
BETAS = (0.5, 0.999)
SEED = 0  # Trainer and plain loops seed torch with it before building the nets: same initial weights
BF16_TARGET = 2.0  # best bf16 Trainer row / fp32 Trainer row, DCGAN-28
LOOP_TARGET = 0.95  # Trainer / plain, per variant
PEAK_SIDE = 2048  # side of the square matrices whose torch.mm sets the peak
NEVER = 10**9  # logging, sample grids and checkpoints stay out of the timed steps


@dataclass(frozen=True)
class Model:
    label: str
    data: tuple[str, ...]  # data.* overrides
    shape: tuple[int, int, int]  # (C, S, S) of one image
    batch_size: int
    width: int = 64


MODELS = {
    "dcgan28": Model("DCGAN-28", ("data.name=mnist5k",), (1, 28, 28), 128),
    "dcgan64": Model(
        "DCGAN-64 RGB",
        ("data.name=stacked-mnist5k", "data.image_size=64", "data.num_samples=2000"),
        (3, 64, 64),
        64,
    ),
}


@dataclass(frozen=True)
class Variant:
    label: str
    precision: str  # "fp32" or "bf16"
    channels_last: bool
    compile: bool


VARIANTS = (
    Variant("fp32 eager", "fp32", False, False),
    Variant("bf16", "bf16", False, False),
    Variant("bf16 + channels_last", "bf16", True, False),
    Variant("compiled (bf16 + channels_last)", "bf16", True, True),
)


def run_overrides(model: Model, threads: int) -> list[str]:
    """Return the `key=value` overrides shared by the in-process Trainers and the `ganforge train` runs."""
    return [
        "recipe=dcgan",
        "objective=nonsaturating",
        *model.data,
        f"nets.latent_dim={LATENT_DIM}",
        f"nets.generator.options.width={model.width}",
        f"nets.discriminator.options.width={model.width}",
        *(
            f"optim.{group}.{key}={value}"
            for group in ("generator", "discriminator")
            for key, value in (("name", "adam"), ("lr", LR), ("betas", list(BETAS)), ("schedule", "constant"))
        ),
        f"training.batch_size={model.batch_size}",
        "training.grad_accum=1",
        "training.ema_decay=null",  # the plain loop keeps no EMA of G
        f"training.seed={SEED}",
        "training.device=cpu",
        f"training.threads={threads}",
        "monitors.enabled=false",
        "logging.tensorboard=false",
        f"logging.log_every={NEVER}",
        f"logging.sample_every={NEVER}",
        f"logging.checkpoint_every={NEVER}",
    ]


def trainer_config(model: Model, variant: Variant, threads: int) -> RunConfig:
    overrides = [
        *run_overrides(model, threads),
        f"training.steps={NEVER}",
        f"training.precision={variant.precision}",
        f"training.channels_last={str(variant.channels_last).lower()}",
        f"training.compile={str(variant.compile).lower()}",
    ]
    return resolve(overrides=overrides)


class TrainerLoop:
    """Steps a real ganforge Trainer the way `fit()` does, without the callbacks (which log nothing here)."""

    def __init__(self, model: Model, variant: Variant, threads: int, run_dir: Path) -> None:
        self.trainer = Trainer(trainer_config(model, variant, threads), run_dir)

    def step(self) -> None:
        trainer = self.trainer
        trainer.train_step(trainer.loader.next())
        trainer.step += 1


class PlainLoop:
    """A hand-written PyTorch loop doing the Trainer's maths (with autocast/channels_last when asked)."""

    def __init__(self, model: Model, variant: Variant, images: torch.Tensor) -> None:
        torch.manual_seed(SEED)
        self.generator = build_net(
            "dcgan_generator", {"width": model.width}, "g", data_shape=model.shape, latent_dim=LATENT_DIM
        )
        self.discriminator = build_net(
            "dcgan_discriminator", {"width": model.width}, "d", data_shape=model.shape
        )
        self.images = images
        if variant.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
            self.images = images.contiguous(memory_format=torch.channels_last)
        if variant.compile:
            self.generator.compile()
            self.discriminator.compile()
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=LR, betas=BETAS, fused=True)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=LR, betas=BETAS, fused=True)
        self.bf16 = variant.precision == "bf16"
        self.batch_size = model.batch_size

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cpu", torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    def step(self) -> None:
        generator, discriminator, batch_size = self.generator, self.discriminator, self.batch_size
        real = self.images[torch.randint(len(self.images), (batch_size,))]  # (B, C, S, S)

        # D step: -log D(x) - log(1 - D(G(z))), with G frozen. Logits in fp32 for the losses.
        generator.requires_grad_(False)
        discriminator.requires_grad_(True)
        with self.autocast():
            with torch.no_grad():
                fake = generator(torch.randn(batch_size, LATENT_DIM))
            real_logits, fake_logits = discriminator(real).float(), discriminator(fake).float()
            d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        d_loss.backward()
        self.d_optimizer.step()
        self.d_optimizer.zero_grad(set_to_none=True)

        # G step: -log D(G(z)) on fresh noise, with D frozen.
        generator.requires_grad_(True)
        discriminator.requires_grad_(False)
        with self.autocast():
            g_loss = F.softplus(-discriminator(generator(torch.randn(batch_size, LATENT_DIM))).float()).mean()
        g_loss.backward()
        self.g_optimizer.step()
        self.g_optimizer.zero_grad(set_to_none=True)


def iteration_flops(model: Model, images: torch.Tensor) -> int:
    """Return the FLOPs of one training iteration (convolutions forward and backward), counted in fp32."""
    loop = PlainLoop(model, VARIANTS[0], images)
    counter = FlopCounterMode(display=False)
    with counter:
        loop.step()
    return counter.get_total_flops()


def one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= 100 else text[:97] + "..."


@dataclass
class Timings:
    """Milliseconds of each timed round of one loop, or why it could not run."""

    step: Callable[[], None] | None
    ms: list[float] = field(default_factory=list)
    failure: str | None = None
    warmup_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None and bool(self.ms)

    def median_ms(self) -> float:
        return statistics.median(self.ms)


def paired_ratio(numerator: Timings, denominator: Timings) -> float:
    """Return the median over rounds of numerator / denominator ms, each pair timed in the same round."""
    return statistics.median(n / d for n, d in zip(numerator.ms, denominator.ms, strict=True))


class MatmulPeak:
    """torch.mm of two PEAK_SIDE-square matrices in fp32 and in bf16: the peak each dtype reaches here.

    It runs in the rotation of the training loops, so each round has its own peak, taken in the same minute
    of a shared machine as the loops it is compared with.
    """

    def __init__(self) -> None:
        self.operands = {
            name: (
                torch.randn(PEAK_SIDE, PEAK_SIDE, dtype=dtype),
                torch.randn(PEAK_SIDE, PEAK_SIDE, dtype=dtype),
            )
            for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
        }
        self.timings = {name: Timings(None) for name in self.operands}
        self.flops = 2 * PEAK_SIDE**3

    def step(self) -> None:
        for name, (a, b) in self.operands.items():
            started = time.perf_counter()
            torch.mm(a, b)
            self.timings[name].ms.append(1000 * (time.perf_counter() - started))

    def median_flops_per_s(self, dtype: str) -> float:
        return self.flops * 1000 / self.timings[dtype].median_ms()

    def fraction(self, loop: Timings, loop_flops: int, dtype: str) -> float:
        """Return the median over rounds of the loop's FLOP/s / the same round's peak of `dtype`."""
        return statistics.median(
            (loop_flops / loop_ms) / (self.flops / peak_ms)
            for loop_ms, peak_ms in zip(loop.ms, self.timings[dtype].ms, strict=True)
        )


def measure_model(
    model: Model, images: torch.Tensor, args: argparse.Namespace
) -> tuple[dict[tuple[str, str], Timings], MatmulPeak]:
    """Return the timings of every (variant, loop) of `model` and of the matmul peak, taken in turns."""
    variants = [v for v in VARIANTS if not (v.compile and args.skip_compile)]
    loops: dict[tuple[str, str], Timings] = {}
    peak = MatmulPeak()
    # A fresh compile cache: the compiled Trainer's warm-up is then a cold compile, as on a first run (the
    # compiled plain loop, built second, finds the same graphs in it).
    torch._dynamo.reset()
    with tempfile.TemporaryDirectory(prefix="ganforge-speed-") as run_dir, fresh_cache():
        for variant in variants:
            for kind in ("Trainer", "plain"):
                try:
                    if kind == "Trainer":
                        step = TrainerLoop(model, variant, args.threads, Path(run_dir)).step
                    else:
                        step = PlainLoop(model, variant, images).step
                    loops[variant.label, kind] = Timings(step)
                except Exception as error:  # noqa: BLE001 -- shown in the table instead of a number
                    loops[variant.label, kind] = Timings(None, failure=one_line(error))
        torch.set_num_threads(args.threads)  # each Trainer sets it too, to the same number
        for (label, kind), timing in loops.items():
            if timing.step is None:
                continue
            started = time.perf_counter()
            try:
                for _ in range(args.warmup):  # compiled loops compile here, every phase's graphs
                    timing.step()
            except Exception as error:  # noqa: BLE001
                timing.failure, timing.step = one_line(error), None
            timing.warmup_s = time.perf_counter() - started
            print(f"  {model.label}, {label}, {kind}: warm-up {timing.warmup_s:.1f} s", file=sys.stderr)
        peak.step()  # its warm-up
        peak.timings = {name: Timings(None) for name in peak.operands}
        # (step, where its time goes); the peak records its own two matmuls
        entries = [(t.step, t) for t in loops.values() if t.step is not None] + [(peak.step, None)]
        order = random.Random(SEED)
        for i in range(args.steps):
            # A new order each round: with a fixed cycle each loop always followed the same neighbour, and
            # the bf16 Trainer, always right after the fp32 plain loop, came out 5 % behind its plain loop.
            order.shuffle(entries)
            for step, timing in entries:
                started = time.perf_counter()
                step()
                if timing is not None:
                    timing.ms.append(1000 * (time.perf_counter() - started))
            if (i + 1) % 5 == 0:
                print(f"  {model.label}: {i + 1}/{args.steps} timed rounds", file=sys.stderr, flush=True)
    return loops, peak


def speed_table(
    model: Model, loops: dict[tuple[str, str], Timings], flops: int, peak: MatmulPeak
) -> list[str]:
    """Return the markdown lines of one model's table (images/s, Trainer/plain, achieved FLOP/s)."""
    lines = [
        "| variant | Trainer ms/step | Trainer images/s | plain images/s | Trainer / plain "
        "| Trainer GFLOP/s | of peak |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    above_peak = False
    for variant in VARIANTS:
        trainer, plain = loops.get((variant.label, "Trainer")), loops.get((variant.label, "plain"))
        if trainer is None or plain is None:
            continue  # skipped (--skip-compile)
        if trainer.ok:
            cells = [f"{trainer.median_ms():.1f}", f"{1000 * model.batch_size / trainer.median_ms():.1f}"]
        else:
            cells = ["-", f"failed: {trainer.failure}"]
        cells.append(
            f"{1000 * model.batch_size / plain.median_ms():.1f}" if plain.ok else f"failed: {plain.failure}"
        )
        if trainer.ok and plain.ok:
            ratio = paired_ratio(plain, trainer)
            cells.append(f"{ratio:.3f}x" + ("" if ratio >= LOOP_TARGET else " (below 0.95)"))
        else:
            cells.append("-")
        if trainer.ok:
            fraction = peak.fraction(trainer, flops, variant.precision)
            above_peak = above_peak or fraction > 1
            cells += [
                f"{flops / trainer.median_ms() / 1e6:.1f}",
                f"{100 * fraction:.0f} % of {variant.precision}",
            ]
        else:
            cells += ["-", "-"]
        lines.append(f"| {variant.label} | " + " | ".join(cells) + " |")
    if above_peak:  # torch.mm in fp32 is MKL's sgemm; the convolutions are oneDNN's kernels
        lines += ["", "(above 100 %: this CPU's convolution kernels beat its torch.mm of the same dtype)"]
    return lines


def verdicts(model: Model, loops: dict[tuple[str, str], Timings]) -> list[str]:
    """Return the lines that hold the measurements against the targets."""
    lines = []
    fp32 = loops[VARIANTS[0].label, "Trainer"]
    bf16_rows = [
        (loops[v.label, "Trainer"].median_ms(), v.label)
        for v in VARIANTS[1:]
        if (v.label, "Trainer") in loops and loops[v.label, "Trainer"].ok
    ]
    if fp32.ok and bf16_rows:
        best_ms, best_label = min(bf16_rows)
        speedup = paired_ratio(fp32, loops[best_label, "Trainer"])
        best_rate, fp32_rate = 1000 * model.batch_size / best_ms, 1000 * model.batch_size / fp32.median_ms()
        rates = f"{best_rate:.1f} against {fp32_rate:.1f} images/s"
        if model is MODELS["dcgan28"]:
            verdict = "meets" if speedup >= BF16_TARGET else "misses"
            lines.append(
                f"bf16 / fp32, Trainer, best bf16 row ({best_label}): **{speedup:.2f}x** ({rates}; "
                f"{verdict} the target of >= {BF16_TARGET}x)"
            )
        else:
            lines.append(
                f"bf16 / fp32, Trainer, best bf16 row ({best_label}): {speedup:.2f}x ({rates}; no target)"
            )
    misses = []
    for variant in VARIANTS:
        trainer, plain = loops.get((variant.label, "Trainer")), loops.get((variant.label, "plain"))
        if trainer and plain and trainer.ok and plain.ok:
            ratio = paired_ratio(plain, trainer)
            if ratio < LOOP_TARGET:
                misses.append(f"{variant.label} {ratio:.3f}x")
    lines.append(
        f"Trainer / plain >= {LOOP_TARGET}x: "
        + (f"**missed** by {', '.join(misses)}" if misses else "**met** by every variant measured")
    )
    return lines


# -- processes: `ganforge train` with 1 and with 2 processes ------------------------------------------------


def has_nproc() -> bool:
    """Return whether this ganforge's `train` command takes --nproc."""
    help_text = subprocess.run(
        [sys.executable, "-m", "ganforge", "train", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return "--nproc" in help_text


def cli_steps_per_s(model: Model, nproc: int, threads: int, args: argparse.Namespace) -> list[float]:
    """Run `ganforge train` in `nproc` processes of `threads` threads; return steps/s of its metrics rows
    after the first `args.skip_rows` (which hold start-up)."""
    overrides = [
        *run_overrides(model, threads),
        f"training.steps={args.dist_steps}",
        "training.precision=bf16",
        "training.channels_last=true",
        f"logging.log_every={args.log_every}",
    ]
    with tempfile.TemporaryDirectory(prefix="ganforge-speed-") as run_dir:
        command = [sys.executable, "-m", "ganforge", "train", "--out", run_dir, "--overwrite"]
        command += [item for override in overrides for item in ("--set", override)]
        command += ["--nproc", str(nproc)] if nproc > 1 else []
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode:
            tail = [line for line in done.stderr.splitlines() if line.strip()][-1:] or ["no output"]
            raise RuntimeError(f"exit code {done.returncode}: {tail[0][:100]}")
        rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    rates = [row["steps_per_s"] for row in rows if "steps_per_s" in row]
    return rates[args.skip_rows :]


def distributed_table(args: argparse.Namespace) -> list[str]:
    model = MODELS["dcgan28"]
    lines = [
        f"Processes: `ganforge train`, {model.label}, global batch {model.batch_size}, bf16 + channels_last, "
        f"{args.dist_steps} steps, steps/s from metrics.jsonl rows every {args.log_every} steps "
        f"without the first {args.skip_rows}, {args.dist_rounds} runs each taken in turns (median of rows)",
        "",
        "| processes | threads each | images/s | vs 1 process |",
        "|---:|---:|---:|---:|",
    ]
    setups = [(1, args.threads), (2, max(1, args.threads // 2))]
    nproc_missing = not has_nproc()
    if nproc_missing:
        setups = setups[:1]
    rates: dict[int, list[float]] = {nproc: [] for nproc, _ in setups}
    failures: dict[int, str] = {}
    for round_number in range(args.dist_rounds):
        for nproc, threads in setups:
            if nproc in failures:
                continue
            try:
                rates[nproc] += cli_steps_per_s(model, nproc, threads, args)
            except Exception as error:  # noqa: BLE001 -- shown in the table
                failures[nproc] = one_line(error)
            print(f"  processes: round {round_number + 1}, {nproc} process(es) done", file=sys.stderr)
    single = statistics.median(rates[1]) * model.batch_size if rates[1] and 1 not in failures else None
    for nproc, threads in setups:
        if nproc in failures or not rates[nproc]:
            lines.append(f"| {nproc} | {threads} | failed: {failures.get(nproc, 'no metrics rows')} | - |")
            continue
        images = statistics.median(rates[nproc]) * model.batch_size
        versus = f"{images / single:.2f}x" if single else "-"
        lines.append(f"| {nproc} | {threads} | {images:.1f} | {versus} |")
    if nproc_missing:
        lines.append("| 2 | - | not available (`ganforge train` has no --nproc) | - |")
    return lines


# -- the report ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="dcgan28,dcgan64", help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--steps", type=int, default=30, help="timed rounds (one step of every loop)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations per loop (compiles there)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--skip-distributed", action="store_true", help="leave out the processes table")
    parser.add_argument("--skip-compile", action="store_true", help="leave out the compiled variant")
    parser.add_argument("--dist-steps", type=int, default=60, help="steps of each `ganforge train` run")
    parser.add_argument("--dist-rounds", type=int, default=3, help="runs of each process count")
    parser.add_argument(
        "--log-every", type=int, default=10, help="steps between the metrics rows of those runs"
    )
    parser.add_argument("--skip-rows", type=int, default=2, help="first metrics rows left out")
    args = parser.parse_args(argv)
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in args.models if name not in MODELS]
    if unknown or not args.models:
        parser.error(f"--models: unknown {', '.join(unknown) or '(none given)'} (known: {', '.join(MODELS)})")
    if args.steps < 1 or args.warmup < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--steps, --warmup and --threads must be at least 1")
    if args.dist_steps <= args.log_every * args.skip_rows:
        parser.error("--dist-steps must leave metrics rows after --skip-rows x --log-every")
    args.threads = args.threads or torch.get_num_threads()
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    output = [
        f"ganforge training speed, {datetime.date.today().isoformat()}",
        f"torch {torch.__version__}, {args.threads} threads, {cpu_model()} ({os.cpu_count()} logical CPUs, "
        f"native bf16: {'yes' if cpu_has_fast_bf16() else 'no'}), Python {platform.python_version()}",
        f"{args.steps} timed rounds after {args.warmup} warm-up steps per loop; in each round every loop of "
        f"a model takes one step and torch.mm of {PEAK_SIDE}x{PEAK_SIDE} matrices runs in fp32 and in bf16 "
        "(the peak); medians over rounds",
    ]
    for name in args.models:
        model = MODELS[name]
        print(f"{model.label}: warming up and timing", file=sys.stderr, flush=True)
        images = load_dataset(trainer_config(model, VARIANTS[0], args.threads).data).x  # (N, C, S, S)
        loops, peak = measure_model(model, images, args)
        torch.set_num_threads(args.threads)
        flops = iteration_flops(model, images)
        shape = "x".join(map(str, model.shape))
        compiled = loops.get((VARIANTS[3].label, "Trainer"))
        output += [
            "",
            f"{model.label} ({shape}, batch {model.batch_size}, width {model.width}): "
            f"{flops / 1e9:.2f} GFLOP per iteration (convolutions, forward and backward); "
            f"torch.mm peak fp32 {peak.median_flops_per_s('fp32') / 1e9:.0f} GFLOP/s, "
            f"bf16 {peak.median_flops_per_s('bf16') / 1e9:.0f} GFLOP/s"
            + (f"; compiled Trainer warm-up (cold compile) {compiled.warmup_s:.0f} s" if compiled else ""),
            "",
            *speed_table(model, loops, flops, peak),
            "",
            *verdicts(model, loops),
        ]
    if not args.skip_distributed:
        print("processes: running ganforge train", file=sys.stderr, flush=True)
        output += ["", *distributed_table(args)]
    output += ["", f"(whole benchmark: {time.perf_counter() - started:.0f} s)"]
    print("\n".join(output))


if __name__ == "__main__":
    main()

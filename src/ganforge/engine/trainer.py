"""The training loop. It owns optimizers, schedules, accumulation, the EMA, callbacks and checkpoints;
the recipe owns the GAN maths (see recipes/base.py for how phases are run)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import ganforge
from ganforge.config import RunConfig, resolve
from ganforge.data import Batch, BatchLoader, load_dataset, split_holdout
from ganforge.engine import checkpoint as ckpt
from ganforge.engine import distributed
from ganforge.engine.callbacks import Callback, MetricsLogger, RunReport, SampleGrids, Stats, rewind_metrics
from ganforge.engine.ema import EMA, recalibrate_batch_norm
from ganforge.engine.optim import make_optimizer, make_schedule, match_memory_format
from ganforge.engine.precision import autocast, memory_format_for, resolve_precision
from ganforge.engine.rng import rng_state, seed_everything, set_rng_state
from ganforge.engine.signals import stop_signals_into
from ganforge.engine.transfer import freeze_first_layers, load_initial_weights
from ganforge.errors import TrainingDiverged, UserError
from ganforge.recipes import Recipe, build_recipe
from ganforge.sampling import GENERATOR_FILE, Sampler, save_generator

log = logging.getLogger("ganforge")


HEALTHY_FILE = "healthy.safetensors"  # the newest checkpoint written with no alert since the one before


@dataclass(frozen=True)
class Alert:
    step: int  # the step at which the monitor noticed
    monitor: str  # "mode_collapse", "overpowered", "divergence", "oscillation", ...
    message: str  # one line for people


@dataclass(frozen=True)
class Rollback:
    from_step: int  # where the run was when it rolled back
    to_step: int  # the healthy checkpoint's step
    alert: Alert  # the alert that caused it
    lr_factor: float  # every learning rate was multiplied by this


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int  # steps completed
    reason: str  # "finished", "interrupted", or "stopped" (a monitor's alert, under policy "stop")
    stop_signal: int | None = None  # the signal that interrupted the run, if one did
    stop_reason: str | None = None  # why a monitor stopped the run (reason "stopped")


class Trainer:
    """Runs a recipe's phases over a dataset; everything it needs comes from a RunConfig."""

    def __init__(self, config: RunConfig, run_dir: str | Path, callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        training = config.training
        self._threads_before = torch.get_num_threads()  # given back when fit() ends
        if training.threads:
            torch.set_num_threads(training.threads)
        self.world, self.device = distributed.setup(training.device)
        if self.world.distributed and not training.threads and self.device.type == "cpu":
            cores = distributed.process_limit("cpu")[0]
            torch.set_num_threads(max(1, cores // self.world.local_size))
        self.data = load_dataset(config.data)  # the first load imports libraries that may draw random numbers
        self.precision = resolve_precision(training.precision, self.device, self.data.info.kind)
        resolve_precision(config.sampling.precision, self.device, field="sampling.precision")  # fp16 on CPU
        # The held-out part (data.holdout) is kept for evaluation and never trained on.
        train, _ = split_holdout(self.data, config.data.holdout, config.data.seed)
        world = self.world
        if (training.batch_size // world.size) % training.grad_accum:
            raise UserError(
                f"training.grad_accum: each of the {world.size} processes gets "
                f"{training.batch_size // world.size} samples a step, not divisible by {training.grad_accum}"
            )
        self.loader = BatchLoader(
            train,
            training.batch_size,
            training.seed,
            self.device,
            world.rank,
            world.size,
            augment=config.data.augment,
        )
        seed_everything(training.seed)  # so seed just before the nets: their initial weights come from it
        self.recipe: Recipe = build_recipe(config, self.data.info).to(self.device)
        self.recipe.bind_data(train)
        if training.init_from is not None:  # transfer learning: the nets only; the rest starts fresh
            load_initial_weights(self.recipe.nets, training.init_from)
        # FreezeD: kept out of D's optimizer, and `_train_only` never turns their gradients back on.
        discriminators = [self.recipe.nets[name] for name in self.recipe.groups.get("discriminator", ())]
        self.frozen = freeze_first_layers(discriminators, config.stability.freeze_d)
        self.memory_format = memory_format_for(dict(self.recipe.nets.items()), training.channels_last)
        if self.memory_format == torch.channels_last:
            self.recipe.nets.to(memory_format=torch.channels_last)
            self.loader.to_memory_format(torch.channels_last)
        if training.compile:
            for net in self.recipe.nets.values():
                net.compile()
        self.optimizers = {
            group: make_optimizer(
                [p for p in self.recipe.parameters_of(group) if p not in self.frozen],
                getattr(config.optim, group),
            )
            for group in self.recipe.groups
        }
        # fp16 only: one gradient scaler per phase, as each phase backs up its own loss.
        self.scalers = (
            {phase.name: torch.amp.GradScaler(self.device.type) for phase in self.recipe.phases}
            if self.precision == "fp16"
            else {}
        )
        self.schedules = {
            group: make_schedule(opt, getattr(config.optim, group), training.steps)
            for group, opt in self.optimizers.items()
        }
        self.ema = (
            EMA(self.recipe.generator, training.ema_decay, training.ema_start) if training.ema_decay else None
        )
        # Distributed: the nets are wrapped once, while all of them still require gradients; a phase swaps
        # the wrappers of its group's nets into the recipe (`_replicas_of`). Each rank's own streams start
        # here; rank 0 keeps the run seed's, so a one-process run draws exactly what it always did.
        self.replicas = (
            {name: distributed.replicate(net, self.device) for name, net in self.recipe.nets.items()}
            if world.distributed
            else {}
        )
        if world.rank:
            seed_everything(distributed.rank_seed(training.seed, world.rank))
        self.step = 0
        self.callbacks: list[Callback] = [
            MetricsLogger(self.run_dir, config.logging.log_every, config.logging.tensorboard),
            SampleGrids(self.run_dir, config.logging.sample_every, config.logging.grid_size),
            RunReport(),
            *callbacks,
        ]
        if config.monitors.enabled:
            from ganforge.engine.monitors import default_monitors

            self.callbacks[1:1] = default_monitors(config.monitors)
        if config.evaluation.every is not None:
            from ganforge.metrics.during_training import (
                EvaluateEvery,  # the metrics stack loads only if asked
            )

            self.callbacks.insert(1, EvaluateEvery(config.evaluation))
        if not world.is_main:
            self.callbacks = []  # only rank 0 logs, draws, watches and reports
        self._trainable: str | None = None
        self._stop_signal: int | None = None
        self._last_checkpoint: Path | None = None
        self._ema_calibrated_at: int | None = None  # step at which the EMA net's batch-norm stats were redone
        self.alerts: list[Alert] = []  # every alert raised by a monitor, in order
        self._alert_since_checkpoint = False  # a checkpoint is "healthy" when no alert came since the last
        self._stop_reason: str | None = None  # set by an alert under policy "stop"
        self._rollback_for: Alert | None = None  # set by an alert under policy "rollback"
        self.rollbacks = 0

    # -- the loop --------------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train until `training.steps` (or a SIGINT/SIGTERM, which saves a checkpoint first)."""
        if self.world.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(self.config.to_yaml())
            log.info(
                "training %s on %s: device %s, %d threads%s, precision %s%s",
                self.config.recipe.name,
                self.data.info.name,
                self.device,
                torch.get_num_threads(),
                f" x {self.world.size} processes" if self.world.distributed else "",
                self.precision,
                " (auto)" if self.config.training.precision == "auto" else "",
            )
        reason = "finished"
        with stop_signals_into(self, "_stop_signal"), self._threads_restored():
            for callback in self.callbacks:
                callback.on_train_start(self)
            try:
                while self.step < self.config.training.steps:
                    stats = self.train_step(self.loader.next())
                    self.step += 1
                    for callback in self.callbacks:
                        callback.on_step_end(self, stats)
                    signum, stop, rollback = self._decisions()
                    if self.step % self.config.logging.checkpoint_every == 0:
                        self.save_checkpoint()
                    if rollback is not None:
                        self._roll_back(rollback)  # may stop instead (the same decision on every rank)
                        stop = stop or self._stop_reason
                    if signum is not None:
                        self._stop_signal, reason = signum, "interrupted"
                        break
                    if stop is not None:
                        self._stop_reason, reason = stop, "stopped"
                        break
                if self._last_checkpoint != ckpt.checkpoint_path(self.checkpoint_dir, self.step):
                    self.save_checkpoint()
            except TrainingDiverged:
                for callback in self.callbacks:  # flush metrics and draw the curves that show the blow-up
                    callback.on_train_end(self, "diverged")
                raise
            for callback in self.callbacks:
                callback.on_train_end(self, reason)
            distributed.barrier()  # no rank leaves before rank 0 has written everything
        return TrainResult(self.run_dir, self.step, reason, self._stop_signal, self._stop_reason)

    def _decisions(self) -> tuple[int | None, str | None, Alert | None]:
        """Return what to act on after this step: (signal, monitor's stop reason, rollback alert).

        In a distributed run these are the values all processes agree on through one all-reduce, never the
        live attributes: a signal can land on one process just after the vote and on another just before,
        and acting on it at once would stop them at different steps (each then waits for the other forever).
        A signal that misses this step's vote is counted at the next step's. A monitor's stop or rollback
        comes from rank 0's callbacks and is taken up by every rank.
        """
        if not self.world.distributed:
            return self._stop_signal, self._stop_reason, self._rollback_for
        signum, stop, rollback = distributed.agree(
            [self._stop_signal or 0, self._stop_reason is not None, self._rollback_for is not None],
            self.device,
        )
        return (
            signum or None,
            (self._stop_reason or "stopped by rank 0's monitors") if stop else None,
            (self._rollback_for or Alert(self.step, "rank 0", "rank 0's monitors asked for a rollback"))
            if rollback
            else None,
        )

    def train_step(self, batch: Batch) -> Stats:
        """Run every phase due at this step on `batch`; return the phases' stats."""
        stats: Stats = {}
        parts = self.config.training.grad_accum
        self.recipe.step = self.step
        for phase in self.recipe.phases:
            if self.step % phase.interval or self.step < phase.start:
                continue
            self._train_only(phase.group)
            optimizer = self.optimizers[phase.group]
            scaler = self.scalers.get(phase.name)
            micro_batches = batch.split(parts) if parts > 1 else [batch]
            for i, micro_batch in enumerate(micro_batches):
                last = i == len(micro_batches) - 1
                with self._replicas_of(phase.group, sync=last), autocast(self.precision, self.device):
                    loss, phase_stats = phase.loss(micro_batch)
                    if not torch.isfinite(loss):
                        raise TrainingDiverged(
                            f"loss of phase {phase.name} became {loss.item()} at step {self.step + 1}; "
                            f"training stopped; last good checkpoint: {self._last_checkpoint or 'none yet'}"
                        )
                    loss = loss / parts if parts > 1 else loss
                    (scaler.scale(loss) if scaler is not None else loss).backward()
                for key, value in phase_stats.items():
                    stats[key] = stats[key] + value / parts if key in stats else value / parts
            if scaler is not None:
                scaler.unscale_(optimizer)  # so that the gradient norm below is the true one
            # The gradient norm is kept as a tensor: reading it here would sync a GPU every step.
            grads = [p.grad for p in self.recipe.parameters_of(phase.group) if p.grad is not None]
            if grads:
                stats[f"grad_norm_{phase.name}"] = torch.nn.utils.get_total_norm(grads).detach()
            if scaler is not None:
                scaler.step(optimizer)  # skipped when the scaled gradients overflowed
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if phase.after_step is not None:
                phase.after_step()
            if phase.group == "generator" and self.ema is not None:
                self.ema.update(self.recipe.generator, self.step)
        waiting = any(self.step < phase.start for phase in self.recipe.phases)
        with warnings.catch_warnings() if waiting else contextlib.nullcontext():
            # A group whose phases have not started (Phase.start) has an unstepped optimizer; its schedule
            # still counts the run's steps, which torch would warn about.
            if waiting:
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            for schedule in self.schedules.values():
                schedule.step()
        return stats

    def _train_only(self, group: str) -> None:
        """Let gradients flow only into the nets of `group` (no wasted work on the other nets)."""
        if self._trainable == group:
            return
        for name, net in self.recipe.nets.items():
            net.requires_grad_(name in self.recipe.groups[group])
        for param in self.frozen:
            param.requires_grad_(False)
        self._trainable = group

    @contextlib.contextmanager
    def _replicas_of(self, group: str, sync: bool) -> Iterator[None]:
        """In a distributed run, put the DDP wrappers of `group`'s nets into the recipe for one phase.

        The other nets stay bare: their weights are frozen in this phase, and going through a wrapper would
        make DDP wait for gradients that never come. `sync=False` (all but the last micro-batch of gradient
        accumulation) skips the all-reduce, which then happens once on the summed gradients.
        """
        if not self.replicas:
            yield
            return
        names = self.recipe.groups[group]
        with contextlib.ExitStack() as stack:
            for name in names:
                if not sync:
                    stack.enter_context(self.replicas[name].no_sync())
                self.recipe.nets[name] = self.replicas[name]
            try:
                yield
            finally:
                for name in names:
                    self.recipe.nets[name] = self.replicas[name].module

    @contextlib.contextmanager
    def _threads_restored(self) -> Iterator[None]:
        try:
            yield
        finally:
            torch.set_num_threads(self._threads_before)

    # -- sampling --------------------------------------------------------------------------------------

    def sampler(self) -> Sampler:
        """Return a Sampler over the EMA generator (or the raw one without EMA); shares its weights."""
        reject, precision = self.config.sampling.jacobian_reject, self.config.sampling.precision
        if self.ema is None:
            return Sampler(self.recipe.generator, self.data.info, self.step, "raw", reject, precision)
        if self._ema_calibrated_at != self.step:
            # Fixed noise from its own generator: the training RNG streams stay untouched (exact resume).
            generator = torch.Generator(self.device).manual_seed(self.config.training.seed + 7919)
            probe = next(self.ema.shadow.parameters())
            batches = (self.recipe.noise(64, probe, generator) for _ in range(16))
            recalibrate_batch_norm(self.ema.shadow, batches)
            self._ema_calibrated_at = self.step
        return Sampler(self.ema.shadow, self.data.info, self.step, "ema", reject, precision)

    # -- alerts from the monitors ----------------------------------------------------------------------

    def alert(self, monitor: str, message: str) -> Alert:
        """Record a monitor's warning at this step, tell the callbacks, and apply `monitors.policy`."""
        alert = Alert(self.step, monitor, message)
        self.alerts.append(alert)
        self._alert_since_checkpoint = True
        log.warning("step %d: %s: %s", alert.step, monitor, message)
        for callback in self.callbacks:
            callback.on_alert(self, alert)
        policy = self.config.monitors.policy
        if policy == "stop":
            self._stop_reason = f"{monitor}: {message}"
        elif policy == "rollback" and self._rollback_for is None:
            self._rollback_for = alert
        return alert

    def _roll_back(self, alert: Alert) -> None:
        """Reload the last healthy checkpoint and lower every learning rate (policy "rollback")."""
        self._rollback_for = None
        healthy = self.checkpoint_dir / HEALTHY_FILE
        monitors = self.config.monitors
        if self.rollbacks >= monitors.max_rollbacks or not healthy.is_file():
            why = "no healthy checkpoint yet" if not healthy.is_file() else f"{self.rollbacks} rollbacks done"
            self._stop_reason = f"{alert.monitor}: {alert.message} ({why}; stopping)"
            log.warning("step %d: cannot roll back (%s); stopping", self.step, why)
            return
        from_step = self.step
        # The learning rates in force now (already lowered by earlier rollbacks) are lowered again, so that
        # repeated rollbacks to the same checkpoint compound instead of replaying the same attempt.
        rates = {
            group: ([g["lr"] for g in opt.param_groups], list(self.schedules[group].base_lrs))
            for group, opt in self.optimizers.items()
        }
        self.load_state_dict(ckpt.load_state(healthy))
        for group, (lrs, base_lrs) in rates.items():
            self.schedules[group].base_lrs = [lr * monitors.lr_factor for lr in base_lrs]
            for param_group, lr in zip(self.optimizers[group].param_groups, lrs, strict=True):
                param_group["lr"] = lr * monitors.lr_factor
        self.rollbacks += 1
        self._alert_since_checkpoint = False
        rollback = Rollback(from_step, self.step, alert, monitors.lr_factor)
        log.warning(
            "step %d: rolled back to the healthy checkpoint of step %d, learning rates x%g",
            from_step,
            self.step,
            monitors.lr_factor,
        )
        for callback in self.callbacks:
            callback.on_rollback(self, rollback)

    # -- checkpoints -----------------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def _recipe_state(self) -> dict[str, torch.Tensor]:
        """The recipe's training state beside its nets (LeCam anchors, unrolled Adam moments, ...)."""
        return {k: v.cpu() for k, v in self.recipe.state_dict().items() if not k.startswith("nets.")}

    def state_dict(self) -> dict:
        """Return the full training state. Distributed: a collective; every rank's streams are gathered."""
        state = {
            "step": self.step,
            "nets": self.recipe.nets.state_dict(),
            "recipe": self._recipe_state(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizers": {group: opt.state_dict() for group, opt in self.optimizers.items()},
            "schedules": {group: schedule.state_dict() for group, schedule in self.schedules.items()},
            "scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
            "rng": rng_state(),
            "data": self.loader.state_dict(),
            "world": self.world.size,
            "versions": {"ganforge": ganforge.__version__, "torch": torch.__version__},
        }
        if self.world.distributed:  # what differs between ranks: their random streams and recipe state
            state["ranks"] = distributed.gather({"rng": rng_state(), "recipe": self._recipe_state()})
        return state

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        nets = {f"nets.{key}": value for key, value in state["nets"].items()}
        self.recipe.load_state_dict({**nets, **state.get("recipe", {})})
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        for group, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][group])
            match_memory_format(optimizer)
        for group, schedule in self.schedules.items():
            schedule.load_state_dict(state["schedules"][group])
        for name, scaler in self.scalers.items():
            if name in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][name])
        self.loader.load_state_dict(state["data"])
        saved_world = int(state.get("world", 1))
        ranks = state.get("ranks")
        if saved_world == self.world.size:
            mine = ranks[self.world.rank] if ranks else {"rng": state["rng"], "recipe": {}}
            self.recipe.load_state_dict({**nets, **state.get("recipe", {}), **mine["recipe"]})
            set_rng_state(mine["rng"])
            return
        # Another number of processes: the weights, optimizers and data order carry over, but each rank's
        # random streams restart from seeds derived from (run seed, rank, step).
        if self.world.is_main:
            log.warning(
                "resuming a %d-process run with %d processes: it continues, but not bit for bit as it "
                "would have (the random streams restart from the run seed and the step)",
                saved_world,
                self.world.size,
            )
        seed_everything(distributed.rank_seed(self.config.training.seed + self.step, self.world.rank))

    def save_checkpoint(self) -> Path:
        """Write the full training state atomically, export the generator, keep the newest N."""
        if not all(torch.isfinite(p).all() for p in self.recipe.parameters()):
            raise TrainingDiverged(
                f"weights became NaN or infinite by step {self.step}; training stopped; "
                f"last good checkpoint: {self._last_checkpoint or 'none yet'}"
            )
        path = ckpt.checkpoint_path(self.checkpoint_dir, self.step)
        state = self.state_dict()  # distributed: a collective, so every rank comes here at the same step
        self._last_checkpoint = path
        if not self.world.is_main:
            self._alert_since_checkpoint = False
            return path
        ckpt.save_state(path, state)
        sampler = self.sampler()
        save_generator(self.run_dir / GENERATOR_FILE, sampler)
        for file_name, net in self.recipe.extra_generators().items():  # e.g. CycleGAN's B-to-A generator
            net = getattr(net, "module", net)  # the net itself, not its data-parallel wrapper
            extra = Sampler(net, self.data.info, self.step, "raw", 0.0, self.config.sampling.precision)
            save_generator(self.run_dir / file_name, extra)
        ckpt.prune(self.checkpoint_dir, self.config.logging.keep_checkpoints)
        if self.config.monitors.policy == "rollback" and not self._alert_since_checkpoint:
            ckpt.copy_atomic(path, self.checkpoint_dir / HEALTHY_FILE)
        self._alert_since_checkpoint = False
        for callback in self.callbacks:
            callback.on_checkpoint(self)
        return path

    @classmethod
    def resume(
        cls, run_dir: str | Path, callbacks: Sequence[Callback] = (), steps: int | None = None
    ) -> Trainer:
        """Return a Trainer that continues the run in `run_dir` from its newest checkpoint."""
        run_dir = Path(run_dir)
        if not (run_dir / "config.yaml").is_file():
            raise UserError(f"run folder {str(run_dir)!r} has no config.yaml (is it a ganforge run?)")
        config = resolve(run_dir / "config.yaml", overrides=[f"training.steps={steps}"] if steps else ())
        checkpoints = ckpt.list_checkpoints(run_dir / "checkpoints")
        if not checkpoints:
            raise UserError(f"run folder {str(run_dir)!r} has no checkpoint to resume from")
        trainer = cls(config, run_dir, callbacks)
        trainer.load_state_dict(ckpt.load_state(checkpoints[-1]))
        trainer._last_checkpoint = checkpoints[-1]
        if trainer.world.is_main:
            rewind_metrics(run_dir / "metrics.jsonl", trainer.step)  # a killed run logs those steps again
        return trainer

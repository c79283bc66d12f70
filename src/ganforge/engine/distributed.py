"""Data-parallel training with torch.distributed: gloo on the CPU, NCCL on CUDA.

A run with N processes reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT), whether torchrun started them or `ganforge train --nproc N` did (`launch` below sets the same
variables). Every process builds the same nets and takes its own slice of each global batch; the nets of
the phase being trained are wrapped in DistributedDataParallel, which averages their gradients. So the
processes hold identical weights after every step and together take the step a single process would take on
the whole batch.

Only rank 0 runs callbacks (logs, grids, monitors, reports) and writes checkpoints; whatever it decides (a
signal, a monitor's stop or rollback) is shared with the other ranks through one small all-reduce per step,
so every rank stops, saves and rolls back at the same step. Each rank keeps its own random streams (seeded
from the run seed and the rank), and a checkpoint holds all of them, so a distributed run resumes exactly.

Batch norm is per rank: each process normalises with the statistics of its own slice, as DDP does by
default. SyncBatchNorm is not used: it has no CPU implementation, and it would make every training-mode
forward pass a collective, which rank 0's monitors (which run G alone) cannot take part in.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganforge.errors import UserError

log = logging.getLogger("ganforge")

FAILURE_GRACE_S = 3.0  # launcher: how long the others may take to exit after one process failed


@dataclass(frozen=True)
class World:
    """Where this process stands in the run: rank among `size` processes, `local_*` on this machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def environment_world() -> World:
    """Return the World described by torchrun's environment variables (a single process if unset)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
        local_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(size)))
    except ValueError as exc:
        raise UserError(
            f"distributed environment: RANK/WORLD_SIZE/LOCAL_RANK must be integers ({exc})"
        ) from None
    if size < 1 or not 0 <= rank < size:
        raise UserError(f"distributed environment: RANK {rank} is not within WORLD_SIZE {size}")
    return World(rank, size, local_rank, local_size)


def setup(requested_device: str) -> tuple[World, torch.device]:
    """Join the process group if the environment describes one; return (world, this process's device).

    `requested_device` is training.device ("auto", "cpu" or "cuda"). With CUDA each process takes the GPU
    of its local rank, and the backend is NCCL; on the CPU it is gloo.
    """
    world = environment_world()
    device_type = requested_device
    if device_type == "auto":
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if device_type == "cuda" and not torch.cuda.is_available():
        raise UserError("training.device: cuda was asked for but no CUDA device is available")
    device = torch.device(device_type)
    if device_type == "cuda" and world.distributed:
        if world.local_rank >= torch.cuda.device_count():
            raise UserError(
                f"distributed: local rank {world.local_rank} has no GPU ({torch.cuda.device_count()} here)"
            )
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if world.distributed and not dist.is_initialized():
        missing = [key for key in ("MASTER_ADDR", "MASTER_PORT") if key not in os.environ]
        if missing:
            raise UserError(f"distributed environment: {', '.join(missing)} not set (start with torchrun)")
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=world.rank, world_size=world.size)
        atexit.register(_leave)  # for runs that end through the interpreter; see `end_process`
        log.info("distributed: rank %d of %d, backend %s, device %s", world.rank, world.size, backend, device)
    return world, device


def joined() -> bool:
    """Return whether this process is in a process group (it joined a distributed run)."""
    return dist.is_available() and dist.is_initialized()


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def end_process(code: int) -> NoReturn:
    """End a process of a distributed run with exit code `code`, skipping the interpreter's teardown.

    DistributedDataParallel keeps its process group alive past `destroy_process_group` (its reducer holds
    the group from C++; gloo's worker and socket threads are still running after the group is destroyed and
    every Python object is collected). The group is then torn down by the C++ runtime's exit, next to
    threads that still run, and now and then that aborts a run that went well ("terminate called without
    an active exception", exit code -6). So the process leaves the group, flushes what it wrote, and exits
    at once. Nothing is lost: checkpoints and reports are complete and closed before training returns.
    """
    try:
        _leave()
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:
        os._exit(code)


def rank_seed(seed: int, rank: int) -> int:
    """Return the seed of rank `rank`'s random streams: the run seed itself on rank 0, so a one-process run
    is unchanged, and on the other ranks a number derived from (seed, rank) by numpy's SeedSequence."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint32)[0])


class Replica(DistributedDataParallel):
    """DistributedDataParallel that lets a recipe read its net's own attributes (`latent_dim`, ...)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


def replicate(net: nn.Module, device: torch.device) -> Replica:
    """Wrap `net` for gradient averaging across the processes (rank 0's weights are broadcast first)."""
    device_ids = [device.index] if device.type == "cuda" else None
    return Replica(net, device_ids=device_ids)  # buffers (batch-norm statistics) follow rank 0's


def agree(values: Sequence[int], device: torch.device) -> list[int]:
    """Return the element-wise maximum of `values` over all processes (each process passes its own)."""
    tensor = torch.tensor(list(values), dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [int(v) for v in tensor.tolist()]


def gather(obj: Any) -> list[Any]:
    """Return every process's `obj`, in rank order (a collective: all processes must call it)."""
    objects: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(objects, obj)
    return objects


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


# -- the single-machine launcher behind `--nproc` ---------------------------------------------------------


def process_limit(device: str) -> tuple[int, str]:
    """Return (the most processes one machine may run, what limits it) for training.device `device`."""
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        return torch.cuda.device_count(), "GPUs"
    return len(os.sched_getaffinity(0)) if hasattr(
        os, "sched_getaffinity"
    ) else os.cpu_count() or 1, "CPU cores"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch(arguments: Sequence[str], nproc: int, program: Sequence[str] = ("-m", "ganforge")) -> int:
    """Run `python -m ganforge ARGUMENTS` in `nproc` processes on this machine, as torchrun would.

    `program` replaces `-m ganforge` (a script path, for instance).

    Each child gets torchrun's variables and an even share of the CPU threads. Ctrl-C reaches the children
    (they save a checkpoint together and exit with 130); SIGTERM is passed on to them. If one child fails,
    the others are stopped. Returns rank 0's exit code, or the first failure's.
    """
    cores = process_limit("cpu")[0]
    env = {
        **os.environ,
        "WORLD_SIZE": str(nproc),
        "LOCAL_WORLD_SIZE": str(nproc),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
    }
    env.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))
    children = [
        subprocess.Popen(
            [sys.executable, *program, *arguments],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
        )
        for rank in range(nproc)
    ]

    def pass_on(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),  # the children get Ctrl-C themselves
        signal.SIGTERM: signal.signal(signal.SIGTERM, pass_on),
    }
    codes: dict[int, int] = {}
    first_failure: tuple[int, int] | None = None  # (rank, code) of the process that failed first
    deadline = None  # after a failure, the others get a moment to fail alike (rank 0 then says why)
    try:
        while len(codes) < nproc:
            for rank, child in enumerate(children):
                if rank not in codes and child.poll() is not None:
                    codes[rank] = child.returncode
                    if codes[rank] not in (0, 130, 143) and first_failure is None:
                        first_failure, deadline = (rank, codes[rank]), time.monotonic() + FAILURE_GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                for child in children:  # they would wait for the failed process forever
                    if child.poll() is None:
                        child.terminate()
                deadline = None
            time.sleep(0.05)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if first_failure is None:
        return codes[0]
    if codes[0] not in (0, 130, 143, -signal.SIGTERM):
        return codes[0]  # rank 0 failed too, and said why
    rank, code = first_failure
    print(f"error: training process {rank} of {nproc} exited with code {code}", file=sys.stderr)
    return code if code > 0 else 128 - code

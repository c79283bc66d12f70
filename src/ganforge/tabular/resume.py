"""Checkpoints of a TabularGAN fit, so that an interrupted fit resumes exactly where it stopped.

A checkpoint is one safetensors file (the engine's `save_state`: tensors in safetensors, the rest as JSON,
written atomically, checked by a digest on load). It holds what the training loop needs to go on: both
nets, both optimizers, torch's random state, the epoch, the loss history and the seconds spent. The column
transforms are not in it: a resumed fit fits them again from the same data with the checkpoint's seed,
which gives the same transforms, and the checkpoint's fingerprint of the encoded data and the settings must
match before anything is restored.

When it is written: at the end of an epoch, at most every `every_seconds` (60 by default) and, while the
fit runs in the main thread, when SIGINT (Ctrl-C) or SIGTERM arrives. A signal lets the current epoch end,
writes the checkpoint and raises `FitInterrupted`; a second Ctrl-C stops at once, without a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from ganforge.engine.checkpoint import load_state, save_state
from ganforge.engine.signals import stop_signals_into
from ganforge.errors import UserError

FORMAT = "ganforge-tabular-fit/1"


class FitInterrupted(KeyboardInterrupt):
    """A fit stopped by SIGINT or SIGTERM after writing its checkpoint; `fit(..., resume=True)` goes on."""

    def __init__(self, epoch: int, epochs: int, path: Path):
        super().__init__(f"fit interrupted after epoch {epoch} of {epochs}; checkpoint: {path}")
        self.epoch, self.epochs, self.path = epoch, epochs, path


def fingerprint(params: dict[str, Any], scalars: np.ndarray, codes: np.ndarray) -> str:
    """Return a digest of the settings and the encoded training data, to refuse resuming another fit."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for array in (scalars, codes):
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class FitCheckpoint:
    """Writes (and reads back) the state of one fit; see the module docstring for when."""

    def __init__(self, path: Path, every_seconds: float = 60.0):
        self.path, self.every_seconds = Path(path), every_seconds
        self.identity = ""
        self.seed = 0
        self.stop_signal: int | None = None
        self._last_write = time.monotonic()

    def load(self) -> dict[str, Any]:
        """Return the saved state (its "seed" is what the transforms are fitted again with)."""
        if not self.path.is_file():
            raise UserError(f"resume: no checkpoint at {self.path}")
        state = load_state(self.path)
        if state.get("format") != FORMAT:
            raise UserError(f"resume: {self.path} is not a TabularGAN fit checkpoint")
        return state

    def check(self, state: dict[str, Any]) -> None:
        """Refuse a state written for other data or settings than this fit's (`identity`)."""
        if state["identity"] != self.identity:
            raise UserError(
                f"resume: {self.path} was written by a fit of other data or settings; "
                "use the same table, columns and options, or start afresh without --resume"
            )

    def after_epoch(self, epoch: int, epochs: int, state: Callable[[], dict[str, Any]]) -> None:
        """Write the checkpoint when it is due or a stop was asked for; after a stop, raise FitInterrupted."""
        stop = self.stop_signal is not None
        if stop or time.monotonic() - self._last_write >= self.every_seconds:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_state(
                self.path,
                {"format": FORMAT, "identity": self.identity, "seed": self.seed, "epoch": epoch, **state()},
            )
            self._last_write = time.monotonic()
        if stop:
            raise FitInterrupted(epoch, epochs, self.path)

    def remove(self) -> None:
        """Delete the checkpoint once the fit has finished (the model itself is what to keep)."""
        self.path.unlink(missing_ok=True)

    def stop_on_signals(self) -> AbstractContextManager[None]:
        """While fitting, SIGINT and SIGTERM ask for a checkpoint and a stop; a second SIGINT stops now."""
        return stop_signals_into(self, "stop_signal")

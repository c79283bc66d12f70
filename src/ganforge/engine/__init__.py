"""The training engine: loop, optimizers, EMA, callbacks, checkpoints."""

from ganforge.engine.callbacks import Callback
from ganforge.engine.trainer import Trainer, TrainResult

__all__ = ["Callback", "TrainResult", "Trainer"]

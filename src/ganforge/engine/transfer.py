"""Transfer learning: start a run from another run's weights (`training.init_from`) and freeze the first
layers of its discriminator (`stability.freeze_d`, FreezeD of Mo et al. 2020).

FreezeD fine-tunes a pretrained GAN on a small dataset with D's lower layers fixed: they keep the generic
features learnt on the large dataset, and only the upper layers (and G) adapt, which overfits less than
fine-tuning everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from torch import nn

from ganforge.engine import checkpoint as ckpt
from ganforge.errors import UserError


def initial_checkpoint(source: str | Path) -> Path:
    """Return the checkpoint that `training.init_from` names: a file, or the newest of a run folder."""
    path = Path(source)
    if path.is_dir():
        checkpoints = ckpt.list_checkpoints(path / "checkpoints")
        if not checkpoints:
            raise UserError(f"training.init_from: run folder {str(source)!r} has no checkpoint")
        return checkpoints[-1]
    if not path.is_file():
        raise UserError(f"training.init_from: {str(source)!r} is neither a run folder nor a checkpoint file")
    return path


def load_initial_weights(nets: nn.Module, source: str | Path) -> Path:
    """Load only the nets' weights of the checkpoint `source` names into `nets`; return the checkpoint.

    Every tensor must be there with the same shape: a partly loaded net would silently start half random.
    """
    path = initial_checkpoint(source)
    try:
        saved = ckpt.load_state(path)["nets"]
    except UserError as exc:
        raise UserError(f"training.init_from: {exc}") from None
    except (KeyError, TypeError):
        raise UserError(
            f"training.init_from: {str(path)!r} holds no nets (not a training checkpoint)"
        ) from None
    own = nets.state_dict()
    problems = [f"{key} missing" for key in own if key not in saved]
    problems += [f"{key} not in this run" for key in saved if key not in own]
    problems += [
        f"{key} {tuple(saved[key].shape)} vs {tuple(value.shape)} here"
        for key, value in own.items()
        if key in saved and saved[key].shape != value.shape
    ]
    if problems:
        raise UserError(
            f"training.init_from: the nets in {str(path)!r} do not fit this run's "
            f"({len(problems)} tensors differ, first: {problems[0]}); use the same nets and data shape"
        )
    nets.load_state_dict(saved)
    return path


def layers_with_weights(net: nn.Module) -> list[nn.Module]:
    """Return the submodules of `net` that own parameters, in the order they were registered (input first)."""
    return [module for module in net.modules() if any(True for _ in module.parameters(recurse=False))]


def freeze_first_layers(nets: Iterable[nn.Module], k: int) -> set[nn.Parameter]:
    """Freeze the first `k` layers with weights of each net (requires_grad False); return their parameters.

    The caller keeps the set: the training loop must neither re-enable these parameters nor hand them to
    an optimizer. Their batch-norm running statistics (buffers, not weights) still update.
    """
    frozen: set[nn.Parameter] = set()
    if not k:
        return frozen
    for net in nets:
        layers = layers_with_weights(net)
        if k >= len(layers):  # a D with nothing left to train gives its loss no gradient at all
            raise UserError(
                f"stability.freeze_d: {k} layers asked for, but {type(net).__name__} has "
                f"{len(layers)} layers with weights; freeze at most {len(layers) - 1}"
            )
        for layer in layers[:k]:
            for param in layer.parameters(recurse=False):
                param.requires_grad_(False)
                frozen.add(param)
    return frozen

"""Checkpoints without pickle: tensors in safetensors, everything else as JSON in the file's metadata.

One checkpoint is one file, `checkpoints/step_XXXXXXXX.safetensors`. Nested state (optimizer and scheduler
state dicts, RNG states, the data position) is split into its tensors, stored under path-like keys, and a
JSON tree that refers to them. A SHA-256 over all tensor bytes is stored with it and checked on load, so a
damaged file is reported, never half-loaded. Writes go to a temporary file that is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ganforge.errors import UserError

FORMAT = "ganforge-checkpoint-1"


def split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Return `obj` as a JSON-able tree, moving every tensor into `tensors` under a path-like key."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().clone().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):  # keys may be ints (optimizer state), so keep them typed
        return {
            "__dict__": [
                [key, split_tensors(value, f"{prefix}/{key}", tensors)] for key, value in obj.items()
            ]
        }
    if isinstance(obj, tuple):
        return {"__tuple__": [split_tensors(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [split_tensors(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def join_tensors(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Invert `split_tensors`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__dict__" in tree:
            return {key: join_tensors(value, tensors) for key, value in tree["__dict__"]}
        if "__tuple__" in tree:
            return tuple(join_tensors(v, tensors) for v in tree["__tuple__"])
    if isinstance(tree, list):
        return [join_tensors(v, tensors) for v in tree]
    return tree


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key]
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_atomic(path: Path, write: Any) -> None:
    """Call `write(temporary_path)`, then rename the result over `path` (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy the file `source` to `target` atomically (a hard link when the file system allows one)."""

    def copy(temporary: Path) -> None:
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)

    write_atomic(target, copy)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda temporary: temporary.write_text(text))


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write tensors and string metadata, plus a checksum of the tensors, to `path` atomically."""
    metadata = {**metadata, "sha256": tensor_digest(tensors)}
    write_atomic(path, lambda temporary: save_file(tensors, str(temporary), metadata=metadata))


def read_tensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Return (metadata, tensors) written by `write_tensors`; raise ValueError if the checksum fails.

    Damaged files raise SafetensorError, OSError or ValueError: callers name the file in a UserError.
    """
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    if tensor_digest(tensors) != metadata.get("sha256"):
        raise ValueError("tensor data does not match its checksum")
    return metadata, tensors


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write `state` (nested dicts of tensors and plain values) to `path` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    tree = split_tensors(state, "state", tensors)
    write_tensors(path, tensors, {"format": FORMAT, "tree": json.dumps(tree)})


def load_state(path: Path) -> dict[str, Any]:
    """Return the state saved by `save_state`; a missing or damaged file raises a UserError."""
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} does not exist")
    try:
        metadata, tensors = read_tensors(path)
        if metadata.get("format") != FORMAT:
            raise ValueError("not a ganforge checkpoint")
        return join_tensors(json.loads(metadata["tree"]), tensors)
    except (SafetensorError, ValueError, KeyError, OSError) as exc:  # JSONDecodeError is a ValueError
        raise UserError(f"checkpoint {str(path)!r} is corrupted ({exc})") from None


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step_{step:08d}.safetensors"


def list_checkpoints(folder: Path) -> list[Path]:
    """Return the checkpoints in `folder`, oldest first."""
    return sorted(folder.glob("step_*.safetensors"))


def prune(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)

"""Mixed precision and memory layout: which precision a run uses, the autocast context, and channels_last.

Precision is autocast, not a cast of the weights: weights, optimizer state and EMA stay fp32; matmuls and
convolutions inside the forward and backward passes run in bf16 or fp16. bf16 has fp32's exponent range, so
it needs no loss scaling; fp16 (CUDA only) runs each phase's backward through its own gradient scaler.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch
from torch import nn

from ganforge.errors import UserError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
FAST_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # x86 instructions with native bf16 dot products


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """Return whether this CPU has native bf16 dot products (Linux: read from /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in FAST_BF16_CPU_FLAGS)


def resolve_precision(
    requested: str, device: torch.device, data_kind: str = "images", field: str = "training.precision"
) -> str:
    """Return "fp32", "bf16" or "fp16" for `requested` ("auto" or one of those) on `device`.

    auto picks bf16 for image data on a CUDA device that supports it or on a CPU with native bf16, and fp32
    otherwise. Point data (vectors such as ring8) stays fp32: bf16 keeps 8 significant bits, so a coordinate
    near 2 is only resolved to about 0.008, a third of a ring8 mode's spread, and the small MLPs that model
    such data gain little speed from it.
    """
    if requested == "auto":
        if data_kind != "images":
            return "fp32"
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise UserError(f"{field}: fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    if requested not in ("fp32", "bf16", "fp16"):
        raise UserError(f"{field}: expected auto, fp32, bf16 or fp16, got {requested!r}")
    return requested


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Return the autocast context for `precision` on `device` (a no-op context for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, DTYPES[precision])


def has_convolutions(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in net.modules())


def memory_format_for(nets: dict[str, nn.Module], requested: bool | None) -> torch.memory_format:
    """Return channels_last when asked, or when left to us (None) and some net has convolutions."""
    use = requested if requested is not None else any(has_convolutions(net) for net in nets.values())
    return torch.channels_last if use else torch.contiguous_format

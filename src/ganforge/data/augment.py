"""Random augmentation of whole batches of real images, on their device, from a given generator only.

Unlike DiffAugment (objectives/diffaugment.py), which D applies to real and generated images alike, these
change the real data itself: G learns the augmented distribution. A mirror is harmless wherever the data
is left-right symmetric; shifts show up in generated images too.

Images are (N, C, H, W) in [-1, 1]. Every random draw is made for a whole batch of `batch_size` rows, and a
shard (rows `offset` to `offset + N`) uses its own rows of those draws: the shards of a distributed batch,
augmented apart, equal the batch augmented at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Policy = Callable[[torch.Tensor, torch.Generator, int, int], torch.Tensor]


def augment_batch(
    x: torch.Tensor,  # (N, C, H, W) images, any device and memory format
    policies: Sequence[str],  # names from POLICIES, applied in the order given
    generator: torch.Generator,  # on x's device; the only source of randomness
    *,
    batch_size: int | None = None,  # rows the draws are made for; None: N (x is the whole batch)
    offset: int = 0,  # x's first row within that batch
) -> torch.Tensor:
    """Return x with each policy applied, each image drawn independently, in x's memory format.

    "hflip" mirrors each image left-right with probability 1/2. "translate" shifts each image by whole
    pixels, up to side // 8 in each direction along each axis, filling the uncovered border with -1.
    """
    unknown = [name for name in policies if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown augmentation {', '.join(map(repr, unknown))} (known: {', '.join(POLICIES)})"
        )
    if not policies:
        return x
    if x.ndim != 4:
        raise ValueError(f"augment_batch expects images (N, C, H, W), got shape {tuple(x.shape)}")
    batch_size = len(x) if batch_size is None else batch_size
    if offset < 0 or offset + len(x) > batch_size:
        raise ValueError(f"rows {offset}..{offset + len(x)} are not within a batch of {batch_size}")
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    for name in policies:
        x = POLICIES[name](x, generator, batch_size, offset)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def hflip(x: torch.Tensor, generator: torch.Generator, batch_size: int, offset: int) -> torch.Tensor:
    """Return x with each image mirrored left-right with probability 1/2."""
    draws = torch.rand(batch_size, generator=generator, device=x.device)[offset : offset + len(x)]  # (N,)
    flip = (draws < 0.5)[:, None, None, None]  # (N, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)


def translate(x: torch.Tensor, generator: torch.Generator, batch_size: int, offset: int) -> torch.Tensor:
    """Return x with each image shifted by whole pixels, up to side // 8 along each axis, filled with -1."""
    n, _, height, width = x.shape
    reach_y, reach_x = height // 8, width // 8
    draws = torch.rand(batch_size, 2, generator=generator, device=x.device)[offset : offset + n]  # (N, 2)
    reach = torch.tensor([reach_y, reach_x], device=x.device)  # (2,)
    # Uniform whole shifts in [-reach, reach]; the clamp only guards a float32 product rounding up.
    shifts = (draws * (2 * reach + 1)).floor().long().clamp(max=2 * reach) - reach  # (N, 2)
    if not (reach_y or reach_x):
        return x
    shift_y, shift_x = shifts[:, 0:1], shifts[:, 1:2]  # (N, 1)
    # Output pixel (i, j) is input pixel (i - shift_y, j - shift_x): in the image padded by the reach on
    # every side, that is (i - shift_y + reach_y, ...), always inside it, so one gather moves every image.
    padded = F.pad(x, (reach_x, reach_x, reach_y, reach_y), value=-1.0)  # (N, C, H + 2ry, W + 2rx)
    rows = torch.arange(height, device=x.device) - shift_y + reach_y  # (N, H)
    cols = torch.arange(width, device=x.device) - shift_x + reach_x  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]  # (N, 1, 1)
    shifted = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return shifted.permute(0, 3, 1, 2)


POLICIES: dict[str, Policy] = {"hflip": hflip, "translate": translate}

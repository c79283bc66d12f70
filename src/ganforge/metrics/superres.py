"""Super-resolution quality: PSNR and SSIM, on the luma (Y) channel or on RGB.

Conventions, those of the super-resolution literature since SRCNN (Dong et al. 2014) and used by SRGAN's
tables: images in [-1, 1] are first rounded to 8-bit levels 0..255, as saved files hold them; `border` pixels
(usually the scale) are cut from every side before scoring, since no method can know what lies beyond the
edge; Y is ITU-R BT.601 luma of the 8-bit RGB, Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, in
[16, 235]; the peak value is 255 on Y and on RGB alike.

PSNR = 10 log10(255^2 / MSE), per image, then averaged over images. SSIM (Wang et al. 2004): an 11x11
Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, statistics over the window with 1/N weights, the map
taken where the window fits inside the image ("valid") and averaged; on RGB, the mean over the channels.
This matches scikit-image's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PEAK = 255.0
LUMA = (65.481, 128.553, 24.966)  # BT.601 weights for R, G, B in [0, 1], giving Y in [16, 235]
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K = (0.01, 0.03)


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Return images x (N, C, H, W) in [-1, 1] as 8-bit levels 0..255, float64."""
    return ((x.double().clamp(-1, 1) + 1) * 127.5).round()


def luma(levels: torch.Tensor) -> torch.Tensor:
    """Return the BT.601 Y channel (N, 1, H, W) in [16, 235] of 8-bit RGB levels (N, 3, H, W); a grey image
    (N, 1, H, W) is taken as R = G = B."""
    if levels.shape[1] == 1:
        levels = levels.expand(-1, 3, -1, -1)
    weights = torch.tensor(LUMA, dtype=levels.dtype, device=levels.device).view(1, 3, 1, 1)
    return 16.0 + (levels / PEAK * weights).sum(dim=1, keepdim=True)


def _prepare(
    a: torch.Tensor, b: torch.Tensor, channel: str, border: int
) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape:
        raise ValueError(f"images to compare differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    if channel not in ("y", "rgb"):
        raise ValueError(f"channel must be 'y' or 'rgb', got {channel!r}")
    a, b = to_levels(a), to_levels(b)
    if channel == "y":
        a, b = luma(a), luma(b)
    if border:
        a, b = a[..., border:-border, border:-border], b[..., border:-border, border:-border]
    return a, b


def psnr(a: torch.Tensor, b: torch.Tensor, channel: str = "y", border: int = 0) -> torch.Tensor:
    """Return the PSNR in dB (N,) of images a against b (N, C, H, W) in [-1, 1]; inf where they are equal."""
    a, b = _prepare(a, b, channel, border)
    mse = (a - b).square().flatten(1).mean(dim=1)
    return 10 * torch.log10(PEAK**2 / mse)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    offsets = torch.arange(SSIM_WINDOW, dtype=dtype, device=device) - (SSIM_WINDOW - 1) / 2
    kernel = torch.exp(-offsets.square() / (2 * SSIM_SIGMA**2))
    kernel = kernel / kernel.sum()
    return torch.outer(kernel, kernel)[None, None]  # (1, 1, 11, 11)


def ssim(a: torch.Tensor, b: torch.Tensor, channel: str = "y", border: int = 0) -> torch.Tensor:
    """Return the SSIM (N,) of images a against b (N, C, H, W) in [-1, 1] (module docstring)."""
    a, b = _prepare(a, b, channel, border)
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} after the border cut")
    channels = a.shape[1]
    window = _gaussian_window(a.dtype, a.device).expand(channels, 1, -1, -1)

    def blur(x: torch.Tensor) -> torch.Tensor:  # windowed mean, "valid" positions only
        return F.conv2d(x, window, groups=channels)

    c1, c2 = (SSIM_K[0] * PEAK) ** 2, (SSIM_K[1] * PEAK) ** 2
    mean_a, mean_b = blur(a), blur(b)
    var_a = blur(a * a) - mean_a.square()
    var_b = blur(b * b) - mean_b.square()
    covariance = blur(a * b) - mean_a * mean_b
    index = ((2 * mean_a * mean_b + c1) * (2 * covariance + c2)) / (
        (mean_a.square() + mean_b.square() + c1) * (var_a + var_b + c2)
    )
    return index.flatten(1).mean(dim=1)  # the mean over positions and channels


def score(pairs: list[tuple[torch.Tensor, torch.Tensor]], border: int) -> dict[str, float]:
    """Return the mean PSNR and SSIM, on Y and on RGB, over pairs (upscaled, reference) of single images
    (C, H, W) in [-1, 1]; the images may differ in size from pair to pair."""
    totals = {"psnr_y": 0.0, "ssim_y": 0.0, "psnr_rgb": 0.0, "ssim_rgb": 0.0}
    for upscaled, reference in pairs:
        for channel in ("y", "rgb"):
            totals[f"psnr_{channel}"] += float(psnr(upscaled[None], reference[None], channel, border)[0])
            totals[f"ssim_{channel}"] += float(ssim(upscaled[None], reference[None], channel, border)[0])
    return {key: total / len(pairs) for key, total in totals.items()}

"""Small maths for the report: spherical interpolation of latents and nearest neighbours in data space."""

from __future__ import annotations

import torch


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Return points on the great-circle arc from `z0` to `z1` (both (D,)), at fractions `t`.

    `t` is a float (the result is (D,)) or a tensor (T,) (the result is (T, D)). Norms are interpolated
    linearly along the arc, so two latents of the same norm give points of that norm; t = 0 and t = 1 give
    `z0` and `z1` exactly. Nearly parallel vectors fall back to linear interpolation. Gaussian latents
    concentrate near a sphere, which is why a straight line between them passes through unlikely, too-short
    vectors and a spherical path does not (White 2016, "Sampling Generative Networks").
    """
    t_tensor = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    weights = t_tensor.reshape(-1, 1)  # (T, 1)
    cosine = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cosine)
    sine = torch.sin(omega)
    if sine.abs() < 1e-6:
        points = (1 - weights) * z0 + weights * z1
    else:
        points = torch.sin((1 - weights) * omega) / sine * z0 + torch.sin(weights * omega) / sine * z1
    return points[0] if t_tensor.dim() == 0 else points  # (D,) or (T, D)


def nearest_neighbours(
    queries: torch.Tensor, references: torch.Tensor, k: int, chunk_values: int = 2**22
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (distances, indices), each (Q, k): the `k` nearest `references` to each of the `queries`.

    Both are (N, ...) and compared flattened, by Euclidean distance, nearest first. The references are
    scanned in chunks of about `chunk_values` numbers (32 MiB as float64), so memory stays small however
    many references there are. Float64 keeps a near-copy's distance near 0 rather than at rounding noise.
    """
    flat_queries = queries.reshape(len(queries), -1).double()  # (Q, D)
    chunk_size = max(1, chunk_values // flat_queries.shape[1])
    k = min(k, len(references))
    best_distances = torch.full((len(queries), 0), float("inf"), dtype=torch.float64)
    best_indices = torch.zeros((len(queries), 0), dtype=torch.long)
    for start in range(0, len(references), chunk_size):
        chunk = references[start : start + chunk_size].reshape(-1, flat_queries.shape[1]).double()
        distances = torch.cdist(flat_queries, chunk, compute_mode="donot_use_mm_for_euclid_dist")  # (Q, C)
        indices = torch.arange(start, start + len(chunk)).expand(len(queries), -1)
        merged_distances = torch.cat([best_distances, distances], dim=1)
        merged_indices = torch.cat([best_indices, indices], dim=1)
        best_distances, order = merged_distances.topk(min(k, merged_distances.shape[1]), largest=False)
        best_indices = merged_indices.gather(1, order)
    return best_distances.float(), best_indices

"""The generator and critic for tables (CTGAN's shapes: residual MLP generator, packed MLP critic)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.objectives.regularisers import pack
from ganforge.tabular.columns import Span


class Residual(nn.Module):
    """Linear -> batch norm -> ReLU, with the input concatenated to the output (so widths add up)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.BatchNorm1d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.norm(self.linear(x))), x], dim=1)


class TableGenerator(nn.Module):
    """Maps (noise, condition vector) to the raw outputs of every span; `activate` turns them into rows."""

    def __init__(self, noise_dim: int, cond_dim: int, hidden: Sequence[int], spans: Sequence[Span]):
        super().__init__()
        layers, width = [], noise_dim + cond_dim
        for size in hidden:
            layers.append(Residual(width, size))
            width += size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, sum(span.width for span in spans))
        self.spans = list(spans)

    def forward(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.cat([noise, cond], dim=1)))  # (B, data width) raw

    def activate(self, raw: torch.Tensor, tau: float = 0.2) -> torch.Tensor:
        """Return the rows as the critic sees them: tanh scalars and Gumbel-softmax one-hots."""
        parts, start = [], 0
        for span in self.spans:
            piece = raw[:, start : start + span.width]
            parts.append(torch.tanh(piece) if span.activation == "tanh" else F.gumbel_softmax(piece, tau=tau))
            start += span.width
        return torch.cat(parts, dim=1)


class TableCritic(nn.Module):
    """Scores packs of `pac` rows (PacGAN): higher means more real. Returns one score per pack."""

    def __init__(self, in_features: int, hidden: Sequence[int], pac: int, dropout: float = 0.5):
        super().__init__()
        layers, width = [], in_features * pac
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = size
        self.body = nn.Sequential(*layers, nn.Linear(width, 1))
        self.pac = pac

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.score_packs(pack(rows, self.pac))  # (B, W) -> (B / pac, pac * W) -> (B / pac,)

    def score_packs(self, packs: torch.Tensor) -> torch.Tensor:
        return self.body(packs).squeeze(1)

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


class SpanSoftmax:
    """Softmax within every softmax span of a row at once, instead of one call per span.

    The softmax units of all spans are gathered into one block, and each unit knows the number of its span:
    the per-span maximum and sum are then one scatter each, whatever the number of spans. The result equals
    a separate softmax per span. On CTGAN-sized tables this cuts the generator's activation from about six
    calls per span to a dozen in all.
    """

    def __init__(self, spans: Sequence[Span]):
        soft, tanh, span_of, start, n_spans = [], [], [], 0, 0
        for span in spans:
            units = list(range(start, start + span.width))
            if span.activation == "tanh":
                tanh += units
            else:
                soft += units
                span_of += [n_spans] * span.width
                n_spans += 1
            start += span.width
        self.n_spans = n_spans
        self.soft = torch.tensor(soft, dtype=torch.long)
        self.tanh = torch.tensor(tanh, dtype=torch.long)
        self.span_of = torch.tensor(span_of, dtype=torch.long)
        self.block_index = {unit: i for i, unit in enumerate(soft)}  # output unit -> place in the block
        self.order = torch.argsort(torch.cat([self.tanh, self.soft]))  # block layout -> output layout

    def _shift(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits minus the maximum of their span, the span numbers broadcast to the batch)."""
        index = self.span_of.expand(logits.shape[0], -1)
        top = logits.new_full((logits.shape[0], self.n_spans), -torch.inf)
        top = top.scatter_reduce(1, index, logits.detach(), "amax")  # a constant shift: no gradient needed
        return logits - top.gather(1, index), index

    def softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Return the softmax within each span of `logits` (B, softmax units)."""
        shifted, index = self._shift(logits)
        exp = shifted.exp()
        total = exp.new_zeros((exp.shape[0], self.n_spans)).scatter_add(1, index, exp)
        return exp / total.gather(1, index)

    def log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Return the log-softmax within each span of `logits` (B, softmax units)."""
        shifted, index = self._shift(logits)
        total = shifted.new_zeros((shifted.shape[0], self.n_spans)).scatter_add(1, index, shifted.exp())
        return shifted - total.log().gather(1, index)

    def gumbels(self, rows: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Return Gumbel(0, 1) noise for the softmax units of `rows` rows, drawn as F.gumbel_softmax does."""
        return -torch.empty(rows, len(self.soft), dtype=dtype).exponential_().log()

    def activate(self, raw: torch.Tensor, tau: float, gumbels: torch.Tensor | None = None) -> torch.Tensor:
        """Return tanh of the scalar units and a Gumbel-softmax (Jang et al. 2017) within each span.

        `gumbels` is the noise (from `gumbels`), drawn here if None: rows activated in chunks with slices of
        noise drawn for all of them at once come out as if activated together.
        """
        logits = raw[:, self.soft]
        if gumbels is None:
            gumbels = self.gumbels(raw.shape[0], logits.dtype)
        soft = self.softmax((logits + gumbels) / tau)
        return torch.cat([torch.tanh(raw[:, self.tanh]), soft], dim=1)[:, self.order]


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
        self.span_softmax = SpanSoftmax(self.spans)

    def forward(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.cat([noise, cond], dim=1)))  # (B, data width) raw

    def activate(
        self, raw: torch.Tensor, tau: float = 0.2, gumbels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return the rows as the critic sees them: tanh scalars and Gumbel-softmax one-hots."""
        return self.span_softmax.activate(raw, tau, gumbels)


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

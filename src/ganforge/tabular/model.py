"""TabularGAN: a scikit-learn style estimator that learns a table and samples new rows like it.

The method is CTGAN's (Xu et al. 2019): mode-specific normalisation of numeric columns, a condition vector
with training-by-sampling, a packed critic (PacGAN, pac 10) and WGAN-GP. What differs, and why:

- The data stays as codes and one-hots are built per batch (columns.py), so wide categoricals fit in memory.
- Rows for a condition are drawn with vectorised torch indexing, not one numpy call per row, and the
  mixture is fitted on at most 10,000 values: this is where CTGAN spends much of its time.
- `random_state` makes fit and sample repeat exactly, and fitting never touches the caller's random state.
- Sampled numbers stay inside each column's observed range (`clip_to_range`) and integers stay integers.
- Numeric columns that a linear trend explains well are learnt as the trend's residual (trends.py).
- On larger tables the categorical columns of each sample are drawn again from a classifier chain given the
  row's numbers (refine.py).
- Optional differential privacy (`dp_epsilon`): the critic learns by DP-SGD (opacus); see `_fit_private`.

    model = TabularGAN(epochs=300, random_state=0).fit(df)
    rows = model.sample(1000, conditions={"species": "Gentoo"})
    model.save("model/"); TabularGAN.load("model/")
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ganforge.engine.checkpoint import write_atomic, write_text_atomic
from ganforge.errors import UserError
from ganforge.objectives.adversarial import (
    minimax_discriminator_loss,
    nonsaturating_generator_loss,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)
from ganforge.objectives.regularisers import gradient_penalty, pack
from ganforge.tabular.columns import CategoricalColumn, NumericColumn, TableTransformer, column_kinds
from ganforge.tabular.nets import SpanSoftmax, TableCritic, TableGenerator
from ganforge.tabular.refine import REFINE_MIN_ROWS, LevelRefiner
from ganforge.tabular.resume import FitCheckpoint, FitInterrupted, fingerprint
from ganforge.tabular.trends import Trends

FORMAT = "ganforge-tabular/1"
MARGINAL_MAP_ROWS = 20_000  # generated rows the marginal maps are fitted on
GENERATE_CHUNK = 4096  # rows a forward pass when sampling many
EpochCallback = Callable[[int, int, dict[str, float]], None]  # (epoch, epochs, losses)


class TabularGAN:
    """Learn a table (fit) and draw synthetic rows (sample); save and load as safetensors + JSON.

    Args:
        epochs: passes over the training rows.
        batch_size: rows per step (a multiple of `pac`; CTGAN's default is 500).
        noise_dim: size of the generator's noise input.
        generator_dim: widths of the generator's residual layers.
        discriminator_dim: widths of the critic's hidden layers.
        pac: rows the critic judges together (PacGAN); 1 under differential privacy.
        lr: Adam learning rate of both nets (betas 0.5, 0.9, weight decay 1e-6, as CTGAN).
        gp_weight: weight of the WGAN-GP gradient penalty.
        max_categories: levels kept per categorical column; rarer ones are pooled into "other".
        clip_to_range: keep sampled numbers within each column's observed minimum and maximum.
        match_marginals: after training, map each numeric column's generated numbers so that their
            distribution is the column's fitted mixture, keeping every row's rank (see docs/tabular.md).
        match_by_level: with `match_marginals`, also map each numeric column within the levels of the
            categorical column that explains most of its variance, to mixtures fitted per level (not in a
            private fit: they are fitted on the data).
        trends: before training, replace each numeric column that a linear model of one other numeric
            column and the categorical columns explains well by the model's residual, and put the trend
            back in the samples (see `ganforge.tabular.trends`; not in a private fit).
        refine_levels: after sampling, draw every categorical column again from a classifier chain learnt
            on the training rows, given the row's numbers (see `ganforge.tabular.refine`). None: only
            for tables of at least 5,000 rows; never in a private fit (True there is an error).
        match_frequencies: with `match_marginals`, also shift the generator's logits of each categorical
            column by one offset per level, so that sampled levels come at their training frequencies.
        dp_epsilon: if set, train the critic with DP-SGD to this (epsilon, delta) budget.
        dp_delta: the delta of the budget; default 1 / (10 n) for n training rows.
        dp_max_grad_norm: per-row gradient clipping bound of DP-SGD.
        random_state: seed of everything random in fit and sample; None draws one.
        threads: torch threads while fitting and sampling; None leaves torch's setting.
    """

    def __init__(
        self,
        epochs: int = 300,
        batch_size: int = 500,
        noise_dim: int = 128,
        generator_dim: Sequence[int] = (256, 256),
        discriminator_dim: Sequence[int] = (256, 256),
        pac: int = 10,
        lr: float = 2e-4,
        gp_weight: float = 10.0,
        max_categories: int = 500,
        clip_to_range: bool = True,
        match_marginals: bool = True,
        match_by_level: bool = True,
        match_frequencies: bool = True,
        trends: bool = True,
        refine_levels: bool | None = None,
        dp_epsilon: float | None = None,
        dp_delta: float | None = None,
        dp_max_grad_norm: float = 1.0,
        random_state: int | None = None,
        threads: int | None = None,
    ):
        self.epochs = epochs
        self.batch_size = batch_size
        self.noise_dim = noise_dim
        self.generator_dim = generator_dim
        self.discriminator_dim = discriminator_dim
        self.pac = pac
        self.lr = lr
        self.gp_weight = gp_weight
        self.max_categories = max_categories
        self.clip_to_range = clip_to_range
        self.match_marginals = match_marginals
        self.match_by_level = match_by_level
        self.match_frequencies = match_frequencies
        self.trends = trends
        self.refine_levels = refine_levels
        self.dp_epsilon = dp_epsilon
        self.dp_delta = dp_delta
        self.dp_max_grad_norm = dp_max_grad_norm
        self.random_state = random_state
        self.threads = threads

    # -- settings -----------------------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        return {
            name: (list(value) if isinstance(value, tuple) else value)
            for name, value in vars(self).items()
            if not name.endswith("_") and not name.startswith("_")  # fitted or private attributes
        }

    def _check_params(self, n_rows: int) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise UserError(message)

        need(
            isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"
        )
        need(self.pac >= 1, f"pac must be at least 1, got {self.pac}")
        need(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        need(self.max_categories >= 2, f"max_categories must be at least 2, got {self.max_categories}")
        if self.dp_epsilon is not None:
            need(
                self.refine_levels is not True,
                "refine_levels: a private fit cannot refine levels (the chain would learn from the raw rows)",
            )
            need(self.dp_epsilon > 0, f"dp_epsilon must be positive, got {self.dp_epsilon}")
            delta = self.dp_delta if self.dp_delta is not None else 1 / (10 * n_rows)
            need(0 < delta < 1, f"dp_delta must lie in (0, 1), got {delta}")
        else:
            need(
                self.batch_size % self.pac == 0,
                f"batch_size {self.batch_size} must be a multiple of pac {self.pac}",
            )

    # -- fitting ------------------------------------------------------------------------------------------

    def fit(
        self,
        data: pd.DataFrame | str | Path,
        discrete_columns: str | Sequence[str] = "auto",
        on_epoch: EpochCallback | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
        checkpoint_seconds: float = 60.0,
    ) -> TabularGAN:
        """Learn `data` (a DataFrame, or a CSV/Parquet path or built-in table name); return self.

        `discrete_columns` is "auto" (text, booleans and numbers with at most 10 distinct values are
        categorical) or the names to treat as categorical. `on_epoch(epoch, epochs, losses)` is called after
        every epoch (the CLI's progress bar).

        With `checkpoint` (a file path) the fit's state is written there at most every `checkpoint_seconds`
        and when SIGINT or SIGTERM arrives, which then raises `FitInterrupted`; `resume=True` goes on from
        that file, and the result is the same as a fit never interrupted. The file is deleted when the fit
        ends. See `ganforge.tabular.resume`. A private fit (`dp_epsilon`) is not checkpointed.
        """
        from ganforge.data.tables import load_table  # noqa: PLC0415

        table = load_table(data)
        self._check_params(len(table))
        keeper = None
        if checkpoint is not None:
            if self.dp_epsilon is not None:
                raise UserError("checkpoint: a private fit (dp_epsilon) cannot be checkpointed or resumed")
            keeper = FitCheckpoint(Path(checkpoint), checkpoint_seconds)
        elif resume:
            raise UserError("resume: give the checkpoint file to resume from")
        resumed = keeper.load() if keeper is not None and resume else None
        if resumed is not None:
            seed = int(resumed["seed"])  # the transforms are fitted again exactly as the first time
        elif self.random_state is not None:
            seed = self.random_state
        else:
            seed = int(np.random.SeedSequence().entropy % 2**31)
        self._started = time.perf_counter()
        self._seconds_before = 0.0
        signals = keeper.stop_on_signals() if keeper is not None else contextlib.nullcontext()
        with torch.random.fork_rng(), _threads(self.threads), signals:
            torch.manual_seed(seed)
            rng = np.random.default_rng(seed)
            kinds = column_kinds(table, discrete_columns)
            # the trends are fitted on the data, so a private fit gets none (see _fit_private)
            fit_trends = self.trends and self.dp_epsilon is None
            self.trends_ = Trends.fit(table, kinds) if fit_trends else Trends([])
            original, original_kinds = table, kinds
            table = self.trends_.remove(table)  # from here on the GAN's table: residuals for the trends
            kinds = {**kinds, **{name: "continuous" for name in self.trends_.names}}
            self.transformer_ = TableTransformer.fit(table, kinds, self.max_categories, rng)
            scalars, codes = self.transformer_.encode(table, rng)
            if keeper is not None:
                settings = {k: v for k, v in self.get_params().items() if k not in ("epochs", "threads")}
                keeper.identity, keeper.seed = fingerprint(settings, scalars, codes), seed
                if resumed is not None:
                    keeper.check(resumed)
            self._data = _Rows(self.transformer_, torch.from_numpy(scalars), torch.from_numpy(codes))
            self.generator_ = TableGenerator(
                self.noise_dim, self._data.cond_dim, self.generator_dim, self.transformer_.spans()
            )
            self.history_: list[dict[str, float]] = []
            try:
                if self.dp_epsilon is None:
                    self._fit_wgan(len(table), on_epoch, keeper, resumed)
                else:
                    self._fit_private(len(table), on_epoch)
            except FitInterrupted:
                del self.generator_, self._data  # not fitted: resume from the checkpoint instead
                raise
            if self.match_marginals:
                # the private fit must not consult the data again: it keeps every map (see _fit_private)
                self._fit_marginal_maps(table if self.dp_epsilon is None else None, rng)
            self.refiner_ = None
            if self._refines(len(table)):
                categorical = [column for _, column in self.transformer_.categorical()]
                self.refiner_ = LevelRefiner.fit(original, original_kinds, categorical, rng)
        del self._data
        if keeper is not None:
            keeper.remove()
        self.n_rows_ = len(table)
        self.columns_ = [str(c) for c in table.columns]
        self.kinds_ = {**self.transformer_.kinds, **self.trends_.kinds}
        self.seed_ = seed
        self.fit_seconds_ = self._seconds_before + time.perf_counter() - self._started
        return self

    def _refines(self, n_rows: int) -> bool:
        if self.dp_epsilon is not None or self.refine_levels is False:
            return False
        return self.refine_levels is True or n_rows >= REFINE_MIN_ROWS

    def _optimizers(self, critic: TableCritic) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        def adam(params: Any) -> torch.optim.Optimizer:
            return torch.optim.Adam(params, lr=self.lr, betas=(0.5, 0.9), weight_decay=1e-6, fused=True)

        return adam(self.generator_.parameters()), adam(critic.parameters())

    def _fit_wgan(
        self,
        n_rows: int,
        on_epoch: EpochCallback | None,
        keeper: FitCheckpoint | None = None,
        resumed: dict[str, Any] | None = None,
    ) -> None:
        generator, data = self.generator_, self._data
        critic = TableCritic(self.transformer_.width + data.cond_dim, self.discriminator_dim, self.pac)
        opt_g, opt_d = self._optimizers(critic)
        batch = min(self.batch_size, max(self.pac, n_rows // self.pac * self.pac))
        steps, packs = max(n_rows // batch, 1), batch // self.pac
        first = 1
        if resumed is not None:
            generator.load_state_dict(resumed["generator"])
            critic.load_state_dict(resumed["critic"])
            opt_g.load_state_dict(resumed["opt_g"])
            opt_d.load_state_dict(resumed["opt_d"])
            torch.set_rng_state(resumed["rng"])
            self.history_ = [dict(losses) for losses in resumed["history"]]
            self._seconds_before, first = float(resumed["seconds"]), int(resumed["epoch"]) + 1

        def state() -> dict[str, Any]:
            return {
                "generator": generator.state_dict(),
                "critic": critic.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "rng": torch.get_rng_state(),
                "history": self.history_,
                "seconds": self._seconds_before + time.perf_counter() - self._started,
            }

        generator.train()
        for epoch in range(first, self.epochs + 1):
            totals = {"critic": 0.0, "generator": 0.0}
            for _ in range(steps):
                cond, columns, levels = data.conditions(batch)
                real = torch.cat([data.rows(data.matching(columns, levels)), cond], dim=1)
                raw = generator(torch.randn(batch, self.noise_dim), cond)
                fake = torch.cat([generator.activate(raw), cond], dim=1)
                scores = critic(torch.cat([real, fake.detach()]))  # one pass: real and fake packs never mix
                loss_d = wasserstein_discriminator_loss(scores[:packs], scores[packs:])
                penalty = gradient_penalty(critic.score_packs, pack(real, self.pac), pack(fake, self.pac))
                opt_d.zero_grad(set_to_none=True)
                (loss_d + self.gp_weight * penalty).backward()
                opt_d.step()

                # the generator's step scores the same fake rows against the updated critic
                loss_g = wasserstein_generator_loss(critic(fake)) + data.condition_loss(raw, columns, levels)
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                totals["critic"] += float(loss_d.detach()) / steps
                totals["generator"] += float(loss_g.detach()) / steps
            self.history_.append(totals)
            if on_epoch is not None:
                on_epoch(epoch, self.epochs, totals)
            if keeper is not None:
                keeper.after_epoch(epoch, self.epochs, state)

    def _fit_private(self, n_rows: int, on_epoch: EpochCallback | None) -> None:
        """Train with DP-SGD on the critic (Abadi et al. 2016) through opacus; G learns only through D.

        What the (epsilon, delta) guarantee covers: every step of training. Each step's real rows are a
        Poisson sample of the table; each real row's gradient on the critic is clipped to `dp_max_grad_norm`
        and Gaussian noise is added before the update; the generator sees real data only through the
        critic, so it inherits the guarantee (post-processing), and so does everything sampled from it. The
        condition of a real row is taken from that row itself, and the conditions of fake rows are uniform
        over the levels (not the data's frequencies), so no other path leads from the rows to the weights.

        What it does not cover: the column transforms are fitted on the raw table before training - the
        mixture parameters, each column's minimum and maximum, and the list of categorical levels. Those are
        stored in the model as they are. If they are sensitive, give the model a table whose levels and
        ranges are public, or widen them by hand; we do not fit them with DP. The marginal maps
        (`match_marginals`) are built from the generator and the mixtures only: unlike the ordinary fit, the
        private one keeps every map instead of checking each against the data.

        The loss under DP is the non-saturating GAN loss without gradient penalty (opacus's per-sample
        gradients cannot be differentiated again), and pac is 1 so each clipped gradient belongs to one row.
        """
        try:
            from opacus import PrivacyEngine  # noqa: PLC0415
        except ImportError:
            raise UserError("dp_epsilon: differential privacy needs opacus (pip install opacus)") from None
        generator, data = self.generator_, self._data
        critic = TableCritic(self.transformer_.width + data.cond_dim, self.discriminator_dim, 1)
        opt_g, opt_d = self._optimizers(critic)
        batch = min(self.batch_size, n_rows)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(n_rows)), batch)
        self.dp_delta_ = self.dp_delta if self.dp_delta is not None else 1 / (10 * n_rows)
        engine = PrivacyEngine(accountant="rdp")
        private_critic, opt_d, loader = engine.make_private_with_epsilon(
            module=critic,
            optimizer=opt_d,
            data_loader=loader,
            target_epsilon=self.dp_epsilon,
            target_delta=self.dp_delta_,
            epochs=self.epochs,
            max_grad_norm=self.dp_max_grad_norm,
        )
        generator.train()
        for epoch in range(1, self.epochs + 1):
            totals, steps = {"critic": 0.0, "generator": 0.0}, 0
            for (rows,) in loader:
                if len(rows) == 0:
                    # An empty Poisson sample has probability (1 - q)^n, about e^-batch: never in practice.
                    # It is skipped, and the accountant then counts only the steps taken.
                    opt_d.zero_grad(set_to_none=True)
                    continue
                real_cond, _, _ = data.conditions_of(rows)
                fake_cond, columns, levels = data.conditions(len(rows), uniform=True)
                real = torch.cat([data.rows(rows), real_cond], dim=1)
                with torch.no_grad():
                    fake = generator.activate(generator(torch.randn(len(rows), self.noise_dim), fake_cond))
                scores = private_critic(torch.cat([real, torch.cat([fake, fake_cond], dim=1)]))
                loss_d = minimax_discriminator_loss(scores[: len(rows)], scores[len(rows) :])
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()

                cond, columns, levels = data.conditions(batch, uniform=True)
                raw = generator(torch.randn(batch, self.noise_dim), cond)
                fake = torch.cat([generator.activate(raw), cond], dim=1)
                private_critic.disable_hooks()  # G's step must not record per-sample activations
                for p in private_critic.parameters():
                    p.requires_grad_(False)
                loss_g = nonsaturating_generator_loss(critic(fake)) + data.condition_loss(
                    raw, columns, levels
                )
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                for p in private_critic.parameters():
                    p.requires_grad_(True)
                private_critic.enable_hooks()
                steps += 1
                totals["critic"] += float(loss_d.detach())
                totals["generator"] += float(loss_g.detach())
            totals = {k: v / max(steps, 1) for k, v in totals.items()}
            self.history_.append(totals)
            if on_epoch is not None:
                on_epoch(epoch, self.epochs, totals)
        self.dp_epsilon_spent_ = float(engine.get_epsilon(self.dp_delta_))

    # -- sampling -----------------------------------------------------------------------------------------

    @property
    def mapped_columns_(self) -> list[str]:
        """The numeric columns with a marginal map (see `match_marginals`)."""
        self._check_fitted()
        return self.transformer_.mapped()

    @property
    def level_maps_(self) -> dict[str, str]:
        """{numeric column: its parent} for the columns with maps within levels (see `match_by_level`)."""
        self._check_fitted()
        return self.transformer_.level_mapped()

    @property
    def level_offsets_(self) -> dict[str, dict[Any, float]]:
        """{categorical column: {level: offset}} for the columns with level offsets (see `match_frequencies`);
        None stands for the missing level."""
        self._check_fitted()
        return {
            column.name: dict(zip(column.levels, column.offsets, strict=True))
            for _, column in self.transformer_.categorical()
            if column.offsets
        }

    @property
    def refined_columns_(self) -> list[str]:
        """The categorical columns drawn again from the classifier chain when sampling (`refine_levels`)."""
        self._check_fitted()
        return list(self.refiner_.columns) if self.refiner_ is not None else []

    def _check_fitted(self) -> None:
        if not hasattr(self, "generator_"):
            raise UserError("this TabularGAN is not fitted yet: call fit() or TabularGAN.load()")

    def sample(
        self, n: int, conditions: Mapping[str, Any] | None = None, random_state: int | None = None
    ) -> pd.DataFrame:
        """Return `n` synthetic rows; with `conditions` ({column: value}) only rows that hold those values.

        A condition on a categorical column steers the generator through its condition vector (and, with
        level refinement, keeps its value while the other columns are drawn again); every condition is then
        enforced by keeping only the rows that match (rejection sampling).
        """
        self._check_fitted()
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n <= 0:
            raise UserError(f"n: ask for at least 1 row, got {n!r}")
        wanted = self._conditions(conditions or {})
        seed = random_state if random_state is not None else self.seed_ + 1
        generator = self.generator_
        generator.eval()
        chunks, have, drawn = [], 0, 0
        categorical = {column.name: column for _, column in self.transformer_.categorical()}
        with torch.random.fork_rng(), _threads(self.threads), torch.no_grad():
            torch.manual_seed(seed)
            rng = np.random.default_rng(seed)
            while have < n:
                batch = max(min(4 * (n - have), 50_000), 500)
                cond = self._sample_conditions(batch, wanted)
                raw = self._generate(torch.randn(batch, self.noise_dim), cond)
                scalars, codes = self._sampled(raw)
                rows = self.transformer_.decode(scalars, codes, rng, self.clip_to_range)
                rows = self.trends_.restore(rows, self.clip_to_range)
                if self.refiner_ is not None:  # a column asked for keeps its level, and the rest follow it
                    rows = self.refiner_.refine(rows, categorical, rng, keep={name for name, _ in wanted})
                for name, value in wanted:
                    rows = rows[_matches(rows[name], value)]
                chunks.append(rows)
                have += len(rows)
                drawn += batch
                if drawn >= 100 * n + 50_000 and have < n:
                    raise UserError(
                        f"conditions: only {have} of {drawn} generated rows match {dict(wanted)}; "
                        "the model rarely makes such rows"
                    )
        return pd.concat(chunks, ignore_index=True).iloc[:n].reset_index(drop=True)

    def _conditions(self, conditions: Mapping[str, Any]) -> list[tuple[str, Any]]:
        columns = {column.name: column for column in self.transformer_.columns}
        checked = []
        for name, value in conditions.items():
            if name not in columns:
                raise UserError(f"conditions: no column {name!r} (columns: {', '.join(columns)})")
            column = columns[name]
            if isinstance(column, CategoricalColumn):
                known = [level for level in [*column.levels, *column.pooled] if level != column.OTHER]
                match = [level for level in known if _same(level, value)]
                if not match:
                    shown = ", ".join(map(str, known[:20])) + (" ..." if len(known) > 20 else "")
                    raise UserError(f"conditions: column {name!r} has no value {value!r} (values: {shown})")
                value = match[0]
            checked.append((name, value))
        return checked

    def _sample_conditions(self, batch: int, wanted: list[tuple[str, Any]]) -> torch.Tensor:
        """Return condition vectors: the first categorical condition, else levels by their frequencies."""
        layout = _ConditionLayout(self.transformer_)
        cond = torch.zeros(batch, layout.width)
        if layout.width == 0:
            return cond
        for name, value in wanted:
            if name in layout.offsets:
                column = layout.columns[name]
                level = (
                    column.levels.index(value)
                    if value in column.levels
                    else column.levels.index(column.OTHER)
                )
                cond[:, layout.offsets[name] + level] = 1.0
                return cond
        # no categorical condition: draw a column, then a level by its frequency in the data (as CTGAN)
        names = list(layout.offsets)
        picks = torch.randint(len(names), (batch,))
        for k, name in enumerate(names):
            chosen = picks == k
            share = torch.tensor(layout.columns[name].frequencies)
            levels = torch.multinomial(share, int(chosen.sum()), replacement=True)
            cond[chosen.nonzero()[:, 0], layout.offsets[name] + levels] = 1.0
        return cond

    def _generate(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Return the generator's raw outputs for many rows, GENERATE_CHUNK rows a forward pass (no grad).

        The hidden layers of 50,000 rows at once would hold a few hundred MB; chunks keep it to tens.
        """
        with torch.no_grad():
            return torch.cat(
                [
                    self.generator_(noise[i : i + GENERATE_CHUNK], cond[i : i + GENERATE_CHUNK])
                    for i in range(0, len(noise), GENERATE_CHUNK)
                ]
            )

    def _sampled(self, raw: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Return the rows the generator's raw outputs stand for, as (scalars, codes) arrays (see `_split`):
        the level offsets added, activated GENERATE_CHUNK rows at a time.

        The activation of a wide table's rows holds several temporaries of rows x output units; in chunks
        they stay small (50,000 rows of a table with a 500-level column are about 100 MB an array). The
        Gumbel noise is drawn for all rows first, so the rows are the same as activated all together.
        """
        offsets = torch.zeros(raw.shape[1])
        for start, column in self._level_starts():
            if column.offsets:
                offsets[start : start + len(column.offsets)] = torch.tensor(column.offsets)
        gumbels = self.generator_.span_softmax.gumbels(raw.shape[0], raw.dtype)
        parts = [
            self._split(
                self.generator_.activate(
                    raw[i : i + GENERATE_CHUNK] + offsets, gumbels=gumbels[i : i + GENERATE_CHUNK]
                )
            )
            for i in range(0, raw.shape[0], GENERATE_CHUNK)
        ]
        return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])

    def _fit_offsets(self, raw: torch.Tensor) -> None:
        """Give every categorical column level offsets, from the raw outputs `raw` of rows drawn as `sample`
        draws them (see `CategoricalColumn.fit_offsets`)."""
        for start, column in self._level_starts():
            column.fit_offsets(raw[:, start : start + len(column.levels)].numpy())

    def _level_starts(self) -> list[tuple[int, CategoricalColumn]]:
        """Return (first output unit of its levels, column) for each categorical column."""
        starts, start = [], 0
        for column in self.transformer_.columns:
            if isinstance(column, CategoricalColumn):
                starts.append((start, column))
            start += sum(span.width for span in column.spans())
        return starts

    def _split(self, activated: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Return activated rows as (scalars, codes) arrays: the tanh units, and the argmax of each span."""
        scalars, codes, start = [], [], 0
        for column in self.transformer_.columns:
            for span in column.spans():
                piece = activated[:, start : start + span.width]
                if span.activation == "tanh":
                    scalars.append(piece[:, 0])
                else:
                    codes.append(piece.argmax(dim=1))
                start += span.width
        n = activated.shape[0]
        scalar_array = torch.stack(scalars, 1).numpy() if scalars else np.zeros((n, 0), np.float32)
        return scalar_array, torch.stack(codes, 1).numpy()

    def _fit_marginal_maps(self, table: pd.DataFrame | None, rng: np.random.Generator) -> list[str]:
        """Draw MARGINAL_MAP_ROWS rows as `sample` would; fit the numeric columns' marginal maps on them.

        The generator's marginal of a numeric column is close to the data's but not equal (a GAN trained
        briefly gets the shape least right); the map moves each number to the mixture quantile of its rank
        among the generated numbers, which keeps the rows' joint structure (see `NumericColumn`).
        """
        generator = self.generator_
        generator.eval()
        with torch.no_grad():
            cond = self._sample_conditions(MARGINAL_MAP_ROWS, [])
            raw = self._generate(torch.randn(MARGINAL_MAP_ROWS, self.noise_dim), cond)
            if self.match_frequencies:  # first: the maps within levels group rows by their sampled levels
                self._fit_offsets(raw)
            scalars, codes = self._sampled(raw)
        by_level = rng if self.match_by_level else None  # the level maps' mixtures are fitted with rng
        return self.transformer_.fit_marginal_maps(table, scalars, codes, self.clip_to_range, by_level)

    # -- saving -------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to the folder `path` (model.safetensors + model.json); return the folder.

        The JSON holds the settings, the column transforms and the fit's facts; the safetensors file holds
        the generator's weights (and the level refiner's, prefixed "refiner."). The critic is not kept:
        sampling does not need it. No training row is.
        """
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.generator_.state_dict().items()}
        if self.refiner_ is not None:
            state.update(self.refiner_.state())
        meta = {
            "format": FORMAT,
            "params": self.get_params(),
            "columns": self.transformer_.to_json(),
            "trends": self.trends_.to_json(),
            "refiner": self.refiner_.to_json() if self.refiner_ is not None else None,
            "n_rows": self.n_rows_,
            "seed": self.seed_,
            "fit_seconds": self.fit_seconds_,
            "history": self.history_,
            "dp_epsilon_spent": getattr(self, "dp_epsilon_spent_", None),
            "dp_delta": getattr(self, "dp_delta_", None),
        }
        write_atomic(folder / "model.safetensors", lambda tmp: save_file(state, str(tmp)))
        write_text_atomic(folder / "model.json", json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> TabularGAN:
        """Return the model saved in the folder `path` (no pickle: safetensors + JSON)."""
        folder = Path(path)
        meta_path, weights_path = folder / "model.json", folder / "model.safetensors"
        if not meta_path.is_file() or not weights_path.is_file():
            raise UserError(f"{folder}: not a saved TabularGAN (model.json and model.safetensors expected)")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{meta_path}: not valid JSON ({exc})") from None
        if meta.get("format") != FORMAT:
            raise UserError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        model = cls(**meta["params"])
        model.transformer_ = TableTransformer.from_json(meta["columns"])
        model.trends_ = Trends.from_json(meta.get("trends", []))
        layout = _ConditionLayout(model.transformer_)
        model.generator_ = TableGenerator(
            model.noise_dim, layout.width, model.generator_dim, model.transformer_.spans()
        )
        tensors = load_file(str(weights_path))
        refiner = {k: v for k, v in tensors.items() if k.startswith("refiner.")}
        model.generator_.load_state_dict({k: v for k, v in tensors.items() if k not in refiner})
        record = meta.get("refiner")
        model.refiner_ = LevelRefiner.from_saved(record, refiner) if record is not None else None
        model.n_rows_, model.seed_ = meta["n_rows"], meta["seed"]
        model.fit_seconds_, model.history_ = meta["fit_seconds"], meta["history"]
        model.columns_ = [c.name for c in model.transformer_.columns]
        model.kinds_ = {**model.transformer_.kinds, **model.trends_.kinds}
        if meta.get("dp_epsilon_spent") is not None:
            model.dp_epsilon_spent_, model.dp_delta_ = meta["dp_epsilon_spent"], meta["dp_delta"]
        return model


class _ConditionLayout:
    """Where each categorical column's one-hot sits in the condition vector."""

    def __init__(self, transformer: TableTransformer):
        self.offsets: dict[str, int] = {}
        self.columns: dict[str, CategoricalColumn] = {}
        width = 0
        for _, column in transformer.categorical():
            self.offsets[column.name], self.columns[column.name] = width, column
            width += len(column.levels)
        self.width = width


class _Rows:
    """The encoded training table: builds one-hot rows, conditions and training-by-sampling draws."""

    def __init__(self, transformer: TableTransformer, scalars: torch.Tensor, codes: torch.Tensor):
        self.transformer, self.scalars, self.codes = transformer, scalars, codes
        self.layout = _ConditionLayout(transformer)
        self.cond_dim = self.layout.width
        self.n = codes.shape[0]
        # per categorical column: row indices sorted by level, and where each level's run starts
        self.categorical = transformer.categorical()
        self.order, self.starts, self.counts, self.log_share = [], [], [], []
        for j, column in self.categorical:
            order = torch.argsort(codes[:, j], stable=True)
            counts = torch.bincount(codes[:, j], minlength=len(column.levels))
            self.order.append(order)
            self.counts.append(counts)
            self.starts.append(torch.cumsum(counts, 0) - counts)
            share = torch.log1p(counts.double())  # CTGAN: levels drawn by log-frequency
            self.log_share.append((share / share.sum()).float())
        # where each scalar sits and each code's one-hot starts in the generator's output
        scalar_units, code_starts, output_starts, start = [], [], {}, 0
        for column in transformer.columns:
            if isinstance(column, NumericColumn):
                scalar_units.append(start)
                code_starts.append(start + 1)
            else:
                code_starts.append(start)
                output_starts[column.name] = start
            start += sum(span.width for span in column.spans())
        self.width = start
        self.scalar_units = torch.tensor(scalar_units, dtype=torch.long)
        self.code_starts = torch.tensor(code_starts, dtype=torch.long)
        # the condition loss works on the softmax block of SpanSoftmax: where each condition column starts
        self.span_softmax = SpanSoftmax(transformer.spans())
        self.block_starts = torch.tensor(
            [self.span_softmax.block_index[output_starts[column.name]] for _, column in self.categorical],
            dtype=torch.long,
        )

    def rows(self, index: torch.Tensor) -> torch.Tensor:
        """Return the rows at `index` as the critic sees them: scalars and one-hots in span order."""
        rows = torch.zeros(len(index), self.width)
        rows[:, self.scalar_units] = self.scalars[index]
        return rows.scatter_(1, self.code_starts + self.codes[index], 1.0)

    def conditions(
        self, batch: int, uniform: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (condition vectors, chosen column per row, chosen level per row) for a batch.

        A categorical column is picked uniformly, then a level by log-frequency (CTGAN), or uniformly over
        the levels when `uniform` (the private fit must not use the data's frequencies).
        """
        cond = torch.zeros(batch, self.cond_dim)
        if not self.categorical:
            return cond, torch.zeros(batch, dtype=torch.long), torch.zeros(batch, dtype=torch.long)
        columns = torch.randint(len(self.categorical), (batch,))
        levels = torch.zeros(batch, dtype=torch.long)
        for k, (_, column) in enumerate(self.categorical):
            chosen = (columns == k).nonzero()[:, 0]
            if len(chosen) == 0:
                continue
            share = torch.ones(len(column.levels)) if uniform else self.log_share[k]
            levels[chosen] = torch.multinomial(share, len(chosen), replacement=True)
            cond[chosen, self.layout.offsets[column.name] + levels[chosen]] = 1.0
        return cond, columns, levels

    def conditions_of(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return conditions taken from the rows at `index` themselves: a random column, the row's level."""
        cond = torch.zeros(len(index), self.cond_dim)
        if not self.categorical:
            return cond, torch.zeros(len(index), dtype=torch.long), torch.zeros(len(index), dtype=torch.long)
        columns = torch.randint(len(self.categorical), (len(index),))
        levels = torch.zeros(len(index), dtype=torch.long)
        for k, (j, column) in enumerate(self.categorical):
            chosen = (columns == k).nonzero()[:, 0]
            levels[chosen] = self.codes[index[chosen], j]
            cond[chosen, self.layout.offsets[column.name] + levels[chosen]] = 1.0
        return cond, columns, levels

    def matching(self, columns: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """Return one random training row index per (column, level) pair (training-by-sampling)."""
        if not self.categorical:
            return torch.randint(self.n, (len(columns),))
        index = torch.zeros(len(columns), dtype=torch.long)
        for k in range(len(self.categorical)):
            chosen = (columns == k).nonzero()[:, 0]
            if len(chosen) == 0:
                continue
            level = levels[chosen]
            count = self.counts[k][level].clamp(min=1)
            offset = (torch.rand(len(chosen)) * count).long().clamp(max=count - 1)
            index[chosen] = self.order[k][self.starts[k][level] + offset]
        return index

    def condition_loss(self, raw: torch.Tensor, columns: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """Return the mean cross-entropy of each row's chosen column output against its asked level."""
        if not self.categorical:
            return raw.new_zeros(())
        log_probs = self.span_softmax.log_softmax(raw[:, self.span_softmax.soft])
        asked = (self.block_starts[columns] + levels).unsqueeze(1)
        return -log_probs.gather(1, asked).mean()


def _same(level: Any, value: Any) -> bool:
    """Return whether a stored level equals a user's value (a CLI gives "2007" for the number 2007)."""
    if level is None:
        return value is None or (isinstance(value, float) and math.isnan(value))
    if isinstance(level, bool) or isinstance(value, bool):
        return level is value or str(level).lower() == str(value).lower()
    return level == value or str(level) == str(value)


def _matches(series: pd.Series, value: Any) -> pd.Series:
    if value is None:
        return series.isna()
    return series.astype(object).map(lambda v: v is not None and _same(v, value))


class _threads:
    """Set torch's thread count for a block (None leaves it)."""

    def __init__(self, threads: int | None):
        self.threads = threads

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)

"""Latent editing of a trained generator: interpolation, attribute directions and the truncation trick.

Works on any `Sampler` (from `load_generator`) and needs nothing from the training code.

- `slerp` walks the great circle between two latents. A Gaussian latent of dimension d lies near the
  sphere of radius sqrt(d); the straight line between two such latents cuts through the low-norm interior,
  where G never saw inputs (White 2016, "Sampling generative networks").
- An attribute direction is a unit vector d in latent space such that z + a d has "more" of the attribute
  as a grows. It is found from generated samples labelled by a classifier: either the difference of the
  mean latents with and without the attribute, or the normal of a linear probe (logistic regression on the
  latents) that separates them (as in InterFaceGAN, Shen et al. 2020).
- The truncation trick scales z towards the mean of N(0, I) by psi in (0, 1]: fewer odd samples, less
  variety (Brock et al. 2019 resample instead; scaling is the StyleGAN form with the mean at 0).

Directions are stored in the run folder as `directions.safetensors`: one (latent_dim,) tensor per name,
with JSON metadata saying how each was found. Safetensors, never pickle: loading runs no code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError

from ganforge.engine.checkpoint import read_tensors, write_tensors
from ganforge.errors import UserError
from ganforge.sampling import Sampler, load_generator

DIRECTIONS_FILE = "directions.safetensors"
PARALLEL_EPS = 1e-9  # 1 - |cos(angle)| below this (angle under ~5e-5): slerp falls back to lerp
MAX_AMOUNT = 10.0  # largest --amount: latents are N(0, I), so 10 is ten standard deviations along d
ATTRIBUTE_KEYS = ("digit", "class", "label")  # "digit=7": samples the classifier calls class 7
HELD_OUT_FRACTION = 0.2  # real samples the classifier is scored on, never trained on


@dataclass(frozen=True)
class Direction:
    vector: torch.Tensor  # (latent_dim,) unit vector
    info: dict[str, Any] = field(default_factory=dict)  # how it was found: method, samples, accuracy, ...


# -- interpolation and truncation ------------------------------------------------------------------------


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Return the spherical interpolation from `a` (t=0) to `b` (t=1) along their last axis.

    `a` and `b` are (..., d); `t` a number or a tensor that broadcasts against (..., 1). For inputs of equal
    norm every point has that norm. Where a and b are (nearly) parallel or opposite the great circle is
    undefined or unstable, and the result is the straight line (1 - t) a + t b.
    """
    # The angle in float64: in float32, arccos near +-1 loses half its digits and sin(angle) its meaning.
    a64, b64 = a.double(), b.double()
    t = torch.as_tensor(t, dtype=torch.float64, device=a.device)
    a_unit = a64 / a64.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    b_unit = b64 / b64.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    cosine = (a_unit * b_unit).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)  # (..., 1)
    parallel = 1 - cosine.abs() < PARALLEL_EPS
    angle = torch.arccos(cosine)
    sine = torch.where(parallel, torch.ones_like(cosine), torch.sin(angle))
    spherical = (torch.sin((1 - t) * angle) * a64 + torch.sin(t * angle) * b64) / sine
    linear = (1 - t) * a64 + t * b64
    return torch.where(parallel, linear, spherical).to(a.dtype)


def truncate(z: torch.Tensor, psi: float) -> torch.Tensor:
    """Return z * psi: latents pulled towards the mean (0) of N(0, I); psi in (0, 1], 1 changes nothing."""
    check_psi(psi)
    return z * psi


def check_psi(psi: float, flag: str = "psi") -> None:
    if not 0 < psi <= 1:
        raise UserError(f"{flag} must be in (0, 1], got {psi}")


def check_amount(amount: float, flag: str = "amount") -> None:
    if not 0 < amount <= MAX_AMOUNT:
        raise UserError(f"{flag} must be in (0, {MAX_AMOUNT:g}], got {amount}")


def interpolation_strip(
    sampler: Sampler, n_rows: int, steps: int, seed: int | None = None, psi: float = 1.0
) -> torch.Tensor:
    """Return (n_rows * steps, *shape) samples: row i is the slerp path between a pair of random latents.

    Rows follow each other (row-major), so a grid with `steps` columns shows one path per row.
    """
    _check_grid(n_rows, steps)
    z = truncate(sampler.latents(2 * n_rows, seed), psi)  # (2 n_rows, latent_dim)
    starts, ends = z[:n_rows, None, :], z[n_rows:, None, :]  # (n_rows, 1, latent_dim)
    t = torch.linspace(0, 1, steps)[None, :, None]  # (1, steps, 1)
    path = slerp(starts, ends, t)  # (n_rows, steps, latent_dim)
    return sampler.decode(path.reshape(n_rows * steps, -1))


def edit_strip(
    sampler: Sampler,
    direction: torch.Tensor,
    amount: float,
    n_rows: int,
    steps: int,
    seed: int | None = None,
    psi: float = 1.0,
) -> torch.Tensor:
    """Return (n_rows * steps, *shape) samples: row i is latent z_i + a d for a from -amount to +amount."""
    _check_grid(n_rows, steps)
    check_amount(amount)
    if direction.shape != (sampler.latent_dim,):
        raise UserError(
            f"direction: shape {tuple(direction.shape)} does not fit a {sampler.latent_dim}-dim latent"
        )
    z = truncate(sampler.latents(n_rows, seed), psi)  # (n_rows, latent_dim)
    amounts = torch.linspace(-amount, amount, steps)  # (steps,)
    moved = z[:, None, :] + amounts[None, :, None] * direction.float()  # (n_rows, steps, latent_dim)
    return sampler.decode(moved.reshape(n_rows * steps, -1))


def _check_grid(n_rows: int, steps: int) -> None:
    if n_rows < 1:
        raise UserError(f"n must be at least 1, got {n_rows}")
    if steps < 2:
        raise UserError(f"steps must be at least 2, got {steps}")


# -- attribute directions --------------------------------------------------------------------------------


def _unit(vector: torch.Tensor) -> torch.Tensor:
    norm = vector.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise UserError("direction: the samples with and without the attribute do not separate")
    return vector / norm


def _attribute_mask(labels: Any, positive: Any = True) -> np.ndarray:
    """Return the boolean mask of samples whose label is `positive`; both groups must be non-empty."""
    mask = np.asarray(labels) == positive
    if mask.all() or not mask.any():
        have = "every" if mask.all() else "no"
        raise UserError(
            f"direction: {have} sample has the attribute ({positive!r}); draw more samples (--samples)"
        )
    return mask


def direction_from_labels(z: torch.Tensor, labels: Any, positive: Any = True) -> torch.Tensor:
    """Return the unit difference of the mean latent of samples labelled `positive` and of the rest.

    `z` is (n, latent_dim); `labels` (n,) class labels (or booleans, with `positive` True).
    """
    mask = torch.as_tensor(_attribute_mask(labels, positive))
    z = z.double()
    return _unit(z[mask].mean(dim=0) - z[~mask].mean(dim=0)).float()


def direction_from_probe(z: torch.Tensor, labels: Any, positive: Any = True, seed: int = 0) -> torch.Tensor:
    """Return the unit normal of a linear probe (logistic regression on the latents) for label `positive`.

    The normal points towards the attribute: moving z along it raises the probe's odds.
    """
    from sklearn.linear_model import LogisticRegression

    mask = _attribute_mask(labels, positive)
    probe = LogisticRegression(max_iter=1000, random_state=seed).fit(z.double().numpy(), mask)
    return _unit(torch.as_tensor(probe.coef_[0])).float()


def parse_attribute(attribute: str, num_classes: int | None, flag: str = "--find") -> int:
    """Return the class of an attribute `digit=7` (or `class=7`, `label=7`)."""
    key, sep, value = attribute.partition("=")
    if not sep or key.strip() not in ATTRIBUTE_KEYS or not value.strip().lstrip("-").isdigit():
        keys = "|".join(ATTRIBUTE_KEYS)
        raise UserError(f"{flag}: expected {keys}=CLASS such as digit=7, got {attribute!r}")
    label = int(value)
    if num_classes is None:
        raise UserError(f"{flag}: the run's data has no labels, so no classifier can find {attribute!r}")
    if not 0 <= label < num_classes:
        raise UserError(f"{flag}: class {label} out of range (the data has classes 0 to {num_classes - 1})")
    return label


def classify_samples(run: str | Path, samples: torch.Tensor, seed: int = 0) -> tuple[np.ndarray, float]:
    """Return (labels of `samples`, the classifier's accuracy on held-out real data).

    The classifier is a logistic regression on pixels, trained on the run's own training data (the `data`
    section of its config.yaml); `samples` are generated images in [-1, 1] of the data's shape.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from ganforge.config import resolve
    from ganforge.data import load_dataset

    config_path = Path(run) / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"run folder {str(run)!r} has no config.yaml: the classifier needs the run's data")
    data = load_dataset(resolve(config_path).data)
    if data.y is None:
        raise UserError(f"data {data.info.name!r} has no labels: no classifier can label the samples")
    if tuple(samples.shape[1:]) != tuple(data.x.shape[1:]):
        raise UserError(
            f"samples of shape {tuple(samples.shape[1:])} do not match the data's {tuple(data.x.shape[1:])}"
        )
    pixels, labels = data.x.flatten(1).numpy(), data.y.numpy()
    train_x, test_x, train_y, test_y = train_test_split(
        pixels, labels, test_size=HELD_OUT_FRACTION, random_state=seed, stratify=labels
    )
    classifier = LogisticRegression(max_iter=300, random_state=seed).fit(train_x, train_y)
    accuracy = float(classifier.score(test_x, test_y))
    return classifier.predict(samples.flatten(1).numpy()), accuracy


def find_direction(
    run: str | Path, attribute: str, n: int = 2000, seed: int = 0, method: str = "probe"
) -> Direction:
    """Return the direction of `attribute` (such as "digit=7") found from `n` samples of the run's generator.

    The samples are labelled by `classify_samples`; `method` is "probe" (`direction_from_probe`) or "mean"
    (`direction_from_labels`).
    """
    if method not in ("probe", "mean"):
        raise UserError(f"--method: expected probe or mean, got {method!r}")
    if n < 10:
        raise UserError(f"--samples must be at least 10, got {n}")
    sampler = load_generator(run)
    label = parse_attribute(attribute, sampler.data.num_classes)
    z = sampler.latents(n, seed)  # (n, latent_dim)
    predicted, accuracy = classify_samples(run, sampler.decode(z), seed)
    find = direction_from_probe if method == "probe" else direction_from_labels
    vector = find(z, predicted, label)
    info = {
        "attribute": attribute,
        "method": method,
        "samples": n,
        "seed": seed,
        "with_attribute": int((predicted == label).sum()),
        "classifier": "logistic regression on pixels of the run's training data",
        "classifier_accuracy": round(accuracy, 4),  # on held-out real data
        "generator_step": sampler.step,
    }
    return Direction(vector, info)


# -- storage ---------------------------------------------------------------------------------------------


def load_directions(run: str | Path) -> dict[str, Direction]:
    """Return the directions saved in a run folder by name (empty when it has none)."""
    path = Path(run) / DIRECTIONS_FILE
    if not path.is_file():
        return {}
    try:
        metadata, tensors = read_tensors(path)
        infos = json.loads(metadata["directions"])
        return {name: Direction(tensors[name], infos.get(name, {})) for name in sorted(tensors)}
    except (SafetensorError, KeyError, ValueError, OSError) as exc:
        raise UserError(f"directions file {str(path)!r} is corrupted ({exc})") from None


def save_direction(run: str | Path, name: str, direction: Direction) -> Path:
    """Add (or replace) the direction `name` in the run folder's directions file; return the file."""
    if not name.strip():
        raise UserError("direction name must not be empty")
    if not math.isclose(float(direction.vector.norm()), 1.0, rel_tol=1e-4):
        raise UserError(f"direction {name!r} is not a unit vector")
    directions = {**load_directions(run), name: direction}
    path = Path(run) / DIRECTIONS_FILE
    tensors = {key: d.vector.detach().float().cpu().contiguous() for key, d in directions.items()}
    write_tensors(path, tensors, {"directions": json.dumps({key: d.info for key, d in directions.items()})})
    return path


def get_direction(run: str | Path, name: str, flag: str = "--direction") -> Direction:
    """Return the saved direction `name`; an unknown name is a UserError listing the known ones."""
    directions = load_directions(run)
    if name not in directions:
        known = ", ".join(directions) or f"none yet; find one with `ganforge edit {run} --find digit=7`"
        raise UserError(f"{flag}: unknown direction {name!r} (known: {known})")
    return directions[name]

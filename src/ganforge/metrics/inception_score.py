"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs"):
IS = exp(E_x KL(p(y|x) || p(y))), high when each sample is confidently classified (low-entropy p(y|x)) and
the classes are evenly used (high-entropy marginal p(y)). It lies between 1 and the number of classes.
"""

from __future__ import annotations

import numpy as np

from ganforge.errors import UserError


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """Return log p(y|x) for each row of `logits` (N, K), stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Return the mean and standard deviation (ddof=0) of the Inception Score over `splits` splits.

    `logits` (N, K) are a classifier's pre-softmax outputs. Each split is a contiguous block of rows with its
    own marginal p(y), as in the original implementation (rows i*N//splits up to (i+1)*N//splits).
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise UserError(f"logits must be a 2-D array (samples, classes); got shape {logits.shape}")
    if splits < 1:
        raise UserError(f"Inception Score needs at least 1 split; got splits={splits}")
    if len(logits) < splits:
        raise UserError(f"Inception Score needs at least as many samples as splits: {len(logits)} < {splits}")
    if not np.isfinite(logits).all():
        raise UserError("logits contain NaN or infinite values")
    log_probs = _log_softmax(logits)  # (N, K)
    num_samples = len(logits)
    scores = np.empty(splits)
    for index in range(splits):
        part = log_probs[index * num_samples // splits : (index + 1) * num_samples // splits]
        # log of the split's marginal p(y) = mean_x p(y|x), kept in log space so tiny probabilities survive.
        shift = part.max(axis=0)
        log_marginal = shift + np.log(np.exp(part - shift).mean(axis=0))  # (K,)
        kl_per_sample = (np.exp(part) * (part - log_marginal)).sum(axis=1)
        scores[index] = np.exp(kl_per_sample.mean())
    return float(scores.mean()), float(scores.std())

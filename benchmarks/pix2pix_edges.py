"""Score a pix2pix run on edges-mnist5k's held-out pairs: L1 to the targets, and how often a LeNet trained on
the training split's digits labels a translation with its source digit's label. Prints one table row.

    python benchmarks/pix2pix_edges.py RUN [--epochs 12]
"""

from __future__ import annotations

import argparse

import torch

from ganforge.config import resolve
from ganforge.data import load_dataset, split_holdout
from ganforge.data.paired import split_pairs
from ganforge.metrics.extractors.lenet import accuracy, train_classifier
from ganforge.translation import load_translator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = resolve(f"{args.run}/config.yaml")
    data = load_dataset(config.data)
    train, held = split_holdout(data, config.data.holdout, config.data.seed)
    if held is None or data.y is None:
        raise SystemExit("the run needs labelled paired data with data.holdout > 0")
    translator = load_translator(args.run)
    source, target = split_pairs(held.x, data.info.pair_channels)
    translated = translator.translate(source)
    _, train_digits = split_pairs(train.x, data.info.pair_channels)
    classifier = train_classifier(train_digits, train.y, 10, epochs=args.epochs, seed=0)
    print(
        f"step {translator.sampler.step}  held-out pairs {len(held.x)}  "
        f"L1 {(translated - target).abs().mean().item():.4f}  "
        f"LeNet agrees with source label {accuracy(classifier, translated, held.y):.3f}  "
        f"(real targets {accuracy(classifier, target, held.y):.3f}; edge maps as input "
        f"{accuracy(classifier, source, held.y):.3f})"
    )


if __name__ == "__main__":
    main()

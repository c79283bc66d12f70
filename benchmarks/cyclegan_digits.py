"""Score a CycleGAN run on mnist5k-restyle by label preservation: translate the 250 + 250 test digits of each
domain (digits the dataset never holds) and check, with a LeNet trained on the other domain's training
images, how often a translation keeps its source's digit label. Prints a table.

    python benchmarks/cyclegan_digits.py RUN [--epochs 8]
"""

from __future__ import annotations

import argparse

import torch

from ganforge.data.paired import restyle_domains
from ganforge.metrics.extractors.lenet import accuracy, train_classifier
from ganforge.translation import load_translator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_a, labels_a, train_b, labels_b = restyle_domains("train")
    test_a, test_labels_a, test_b, test_labels_b = restyle_domains("test")
    judge_b = train_classifier(train_b, labels_b, 10, epochs=args.epochs, seed=0)  # reads domain B
    judge_a = train_classifier(train_a, labels_a, 10, epochs=args.epochs, seed=0)  # reads domain A
    forward, backward = load_translator(args.run), load_translator(args.run, direction="BtoA")
    print(f"run {args.run}, step {forward.sampler.step}; test digits per domain: {len(test_a)}")
    print("| direction | LeNet judge trained on | judge on real test images | label kept by translations |")
    print("|---|---|---|---|")
    rows = (
        ("A -> B", "B", judge_b, test_b, test_labels_b, forward.translate(test_a), test_labels_a),
        ("B -> A", "A", judge_a, test_a, test_labels_a, backward.translate(test_b), test_labels_b),
    )
    for direction, domain, judge, real, real_labels, translated, source_labels in rows:
        print(
            f"| {direction} | {domain} (2,250 images) | {accuracy(judge, real, real_labels):.3f} "
            f"| {accuracy(judge, translated, source_labels):.3f} |"
        )


if __name__ == "__main__":
    main()

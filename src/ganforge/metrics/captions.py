"""Caption accuracy of a text-to-image generator: do its images show what their sentences say?

For every class of a captioned set (data/captions.py), images are drawn from the sentences of its caption
(its phrasings in turn, through the generator's own text encoder), and each attribute the sentence names is
read back from the image:

- shapes: colour and corner are measured directly (the shape's mean colour and centre of mass); the shape's
  kind by a LeNet trained on the real images' brightest channel.
- mnist5k-captions: the digit by a LeNet trained on the real digits; stroke and slant by the same ink and
  shear measures, against the same per-digit medians, that labelled the real images.

The score is the fraction of images whose attribute matches the sentence, for each attribute and for all of
them at once ("all"). The same readers on held-out real images give the ceiling ("real_" keys): what a
perfect generator would score. Chance is 1 / (number of values) per attribute.

R-precision ("r_precision"; Xu et al. 2018, AttnGAN, uses R = 100 with a learned image-text encoder): each
image is shown its own caption and R - 1 captions of other classes, drawn without repeats, and it picks the
one whose attributes agree most with what the readers see in it. The score is the fraction of images that
pick their own caption, a tie at the top counting 1 / (number tied). Our sets have 40 and 48 classes, so the
default R is 10 (chance 0.1); there is no learned image-text encoder here, the attribute readers stand in.
"""

from __future__ import annotations

import torch

from ganforge.data import TensorData
from ganforge.data.captions import SCHEMES, shape_colour_and_corner, style_indices, style_thresholds
from ganforge.errors import UserError
from ganforge.metrics.extractors.lenet import train_classifier
from ganforge.sampling import Sampler

HELD_OUT = 0.1  # fraction of the real images kept from the readers' training, to measure the ceiling
R_CANDIDATES = 10  # R of R-precision: the captions an image chooses from


class AttributeReader:
    """Reads a captioned set's attributes from images: (N, C, S, S) -> (N, A) attribute indices."""

    def __init__(self, real: TensorData, epochs: int, seed: int) -> None:
        assert real.y is not None
        self.dataset = real.info.name
        self.scheme = SCHEMES[self.dataset]
        truth = self.scheme.attribute_indices(real.y)  # (N, A)
        if self.dataset == "shapes":  # the kind of shape from the brightest channel: colour-blind
            self.classifier = train_classifier(real.x.amax(dim=1, keepdim=True), truth[:, 1], 3, epochs, seed)
        else:
            self.classifier = train_classifier(real.x, truth[:, 0], 10, epochs, seed)
            self.thresholds = style_thresholds(real.x, truth[:, 0])

    @torch.inference_mode()
    def read(self, x: torch.Tensor, intended: torch.Tensor) -> torch.Tensor:
        """Return the (N, A) attributes seen in images x; `intended` (N, A) only sets the digit whose
        stroke and slant medians apply (a thin 7 is thin for a 7)."""
        if self.dataset == "shapes":
            colour, corner = shape_colour_and_corner(x)
            kind = self.classifier(x.amax(dim=1, keepdim=True)).argmax(dim=1)
            return torch.stack([colour, kind, corner], dim=1)
        digit = self.classifier(x).argmax(dim=1)
        return torch.cat([digit[:, None], style_indices(x, intended[:, 0], self.thresholds)], dim=1)


def caption_accuracy(
    sampler: Sampler,
    real: TensorData,  # the captioned set the generator learned (mnist5k-captions or shapes)
    per_class: int = 50,  # images drawn for each class's caption
    seed: int = 0,  # seeds the latents and the readers' training
    epochs: int = 6,  # epochs of the LeNet reader
    r: int = R_CANDIDATES,  # captions each image chooses from in R-precision (its own + r - 1 others)
) -> dict[str, float]:
    """Return {attribute: accuracy, "all", "r_precision"} and the same with "real_" for held-out real
    images (see the module docstring)."""
    if real.info.name not in SCHEMES or real.info.captions is None or real.y is None:
        raise UserError(
            f"caption accuracy needs a captioned set ({', '.join(SCHEMES)}), not {real.info.name!r}"
        )
    if not sampler.takes_text:
        raise UserError(f"caption accuracy needs a text-to-image generator, not {type(sampler.net).__name__}")
    order = torch.randperm(len(real.x), generator=torch.Generator().manual_seed(seed))
    held = order[: int(HELD_OUT * len(order))]
    kept = order[len(held) :]
    reader = AttributeReader(TensorData(real.x[kept], real.y[kept], real.info), epochs, seed)
    scheme, captions = reader.scheme, real.info.captions
    if not 2 <= r <= scheme.num_classes:
        raise UserError(f"r: R-precision chooses among 2 to {scheme.num_classes} captions here, not {r}")
    labels = torch.arange(scheme.num_classes).repeat_interleave(per_class)
    texts = [captions[c][i % len(captions[c])] for i, c in enumerate(labels.tolist())]
    images = sampler.sample(len(labels), seed=seed, text=texts)
    scores = _agreement(reader, images, labels, "", r, seed)
    scores |= _agreement(reader, real.x[held], real.y[held], "real_", r, seed)
    return scores


def _agreement(
    reader: AttributeReader, x: torch.Tensor, labels: torch.Tensor, prefix: str, r: int, seed: int
) -> dict[str, float]:
    scheme = reader.scheme
    truth = scheme.attribute_indices(labels)  # (N, A)
    seen = reader.read(x, truth)  # (N, A)
    hits = seen == truth
    scores = {
        f"{prefix}{name}": float(hits[:, i].float().mean()) for i, (name, _) in enumerate(scheme.attributes)
    }
    scores[f"{prefix}all"] = float(hits.all(dim=1).float().mean())
    candidates = r_candidates(labels, scheme.num_classes, r, seed)  # (N, r), column 0 the own class
    scores[f"{prefix}r_precision"] = float(r_precision(seen, scheme.attribute_indices(candidates)).mean())
    return scores


def r_candidates(labels: torch.Tensor, num_classes: int, r: int, seed: int) -> torch.Tensor:
    """Return (N, r) classes: each row its own label first, then r - 1 other classes without repeats."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(len(labels), num_classes, generator=generator)
    noise[torch.arange(len(labels)), labels] = 2.0  # never drawn among the others: rand < 1
    others = noise.argsort(dim=1)[:, : r - 1]  # (N, r - 1) a random order of the other classes
    return torch.cat([labels[:, None], others], dim=1)


def r_precision(seen: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Return (N,) hits of R-precision: 1 / ties if the first of each row's candidate captions agrees
    with the seen attributes at least as well as every other, else 0.

    `seen` (N, A) are the attributes read from each image; `candidates` (N, R, A) the attributes of the
    captions it chooses from, its own first.
    """
    agree = (candidates == seen[:, None, :]).sum(dim=2)  # (N, R) attributes matched per caption
    best = agree.amax(dim=1)
    tied = (agree == best[:, None]).sum(dim=1)
    return (agree[:, 0] == best).float() / tied

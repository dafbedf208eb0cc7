"""Scoring completions as the course does (FID, PDR) plus pixel accuracy and bits per pixel.

``score_images`` (images → classifier probabilities) is the one place that runs the judge, so
best-of-N reranking can call it on N candidates per prefix and keep the likeliest Pokémon.
:class:`QualityJudge` holds one reference set's FID features, so many generated sets (decodings,
runs, the reference points of :mod:`evaluation.references`) are compared with it at the cost of
featurising the reference once.
"""

import json
import math
import time
from functools import cached_property
from itertools import combinations
from pathlib import Path

import torch

from checkpointing import load_classifier
from datamodules.render import to_rgb
from evaluation.metrics import FeatureKind, PokemonDetectionRate, build_fid
from evaluation.references import REFERENCE_NOTES, reference_sets
from generation.complete import evaluating
from generation.decoding import Decoding
from lightning_modules.classifier import PokemonClassifier

CLASSIFIER_HINT = (
    "no --classifier: PDR and the classifier-feature FID are skipped; train a classifier with "
    "`python train.py --config configs/classifier.yaml` and pass "
    "--classifier runs/classifier/version_0/checkpoints/best.ckpt"
)


@torch.no_grad()
def score_images(classifier: PokemonClassifier, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Probability, ``(N,)``, that each ``(N, seq_len)`` palette-index image looks like a Pokémon."""
    return torch.cat([classifier.probability(chunk).cpu() for chunk in images.split(batch_size)])


class QualityJudge:
    """FIDs (and, with a classifier, PDR) of palette-index image sets against one set of real images.

    ``fid`` uses ``features`` (Inception by default); with a classifier and Inception features,
    ``fid_classifier`` is the classifier-feature FID beside it. Every FID comes with its reference
    points (``fid_ref_nearest``, ``fid_ref_real``; see :mod:`evaluation.references`), measured once
    on the same reference images. The reference images' features are extracted once per judge.

    Args:
        reference: ``(N, seq_len)`` real images to compare with (the dev split).
        palette: ``(vocab_size, 3)`` uint8 colours that render the images.
        train: Training images, source of the reference points.
        prefix_len: Pixels given before completion (the nearest-neighbour copy keeps them).
        classifier: The PDR judge and classifier features; None skips both.
        features: Features of the headline ``fid``: ``inception`` (the course's) or ``classifier``.
        image_height: Rows per image.
        image_width: Pixels per row.
        device: Where features are computed (a classifier's device wins).
    """

    def __init__(
        self,
        reference: torch.Tensor,
        palette: torch.Tensor,
        train: torch.Tensor,
        prefix_len: int,
        classifier: PokemonClassifier | None = None,
        features: FeatureKind = "inception",
        image_height: int = 20,
        image_width: int = 20,
        device: str | torch.device = "cpu",
    ) -> None:
        self.reference, self.palette, self.train, self.prefix_len = reference, palette, train, prefix_len
        self.features = features
        self.classifier, self.height, self.width = classifier, image_height, image_width
        self.device = classifier.device if classifier is not None else torch.device(device)
        kinds = {"fid": features}
        if classifier is not None and features != "classifier":
            kinds["fid_classifier"] = "classifier"
        self.fids, self.descriptions = {}, {}
        for key, kind in kinds.items():
            metric, self.descriptions[key] = build_fid(kind, classifier, reset_real_features=False)
            self.fids[key] = metric.to(self.device)
            for chunk in reference.split(256):
                self.fids[key].update(self.render(chunk), real=True)
        self._references: dict | None = None

    def render(self, images: torch.Tensor) -> torch.Tensor:
        return to_rgb(images.to(self.device), self.palette, self.height, self.width)

    def fid(self, images: torch.Tensor) -> dict[str, float]:
        """``{"fid": ..., "fid_classifier": ...}`` of ``images`` against the reference images."""
        scores = {}
        for key, metric in self.fids.items():
            metric.reset()  # forgets the previous generated set, keeps the reference's features
            for chunk in images.split(256):
                metric.update(self.render(chunk), real=False)
            scores[key] = float(metric.compute())
        return scores

    def fid_between(self, sets: list[torch.Tensor]) -> list[float]:
        """The headline FID (same features) between every pair of ``sets``, in ``itertools.combinations`` order.

        For completions of the same prefixes drawn with different seeds this is the FID a model would get
        if the real images were one more draw of its own: how far two honest samples land from each other,
        which the FID against the real images cannot go much below unless the completions copy each other.
        """
        metric = build_fid(self.features, self.classifier, reset_real_features=True)[0].to(self.device)
        values = []
        for first, second in combinations(sets, 2):
            metric.reset()
            for images, real in ((first, True), (second, False)):
                for chunk in images.split(256):
                    metric.update(self.render(chunk), real=real)
            values.append(float(metric.compute()))
        return values

    @cached_property
    def reference_images(self) -> dict[str, torch.Tensor]:
        """The image sets behind the reference points (:func:`evaluation.references.reference_sets`), built once."""
        return reference_sets(self.reference, self.train, self.prefix_len, self.palette)

    def references(self) -> dict[str, float]:
        """``fid_ref_nearest``, ``fid_ref_real`` (and the same for ``fid_classifier``), computed once."""
        if self._references is None:
            sets = self.reference_images
            scores = {name: self.fid(images) for name, images in sets.items()}
            self._references = {f"{key}_ref_{name}": scores[name][key] for key in self.fids for name in sets}
        return self._references

    def __call__(self, generated: torch.Tensor) -> dict:
        """Every FID with its reference points, PDR with a classifier, the features used, the count."""
        scores, references = self.fid(generated), self.references()
        results = {}
        for key, value in scores.items():
            results[key] = value
            results.update({name: ref for name, ref in references.items() if name.startswith(f"{key}_ref_")})
        if self.classifier is not None:
            results["pdr"] = detection_rate(self.classifier, generated)
        results["features"] = self.descriptions["fid"]
        if "fid_classifier" in self.descriptions:
            results["features_classifier"] = self.descriptions["fid_classifier"]
        results["num_images"] = len(generated)
        results["num_reference_images"] = len(self.reference)
        return results


@torch.no_grad()
def complete_prefixes(model, prefixes: torch.Tensor, decoding: Decoding, batch_size: int = 80) -> torch.Tensor:
    """Completes ``(N, prefix_len)`` prefixes to full images; the seed advances per batch, as predict.py's."""
    done = []
    for start in range(0, len(prefixes), batch_size):
        done.append(
            model.complete(prefixes[start : start + batch_size].to(model.device), decoding.for_batch(start)).cpu()
        )
    return torch.cat(done)


def use_judge_data(model, judge: QualityJudge) -> None:
    """Gives ``model`` what best-of-N compares by, from the judge's data, unless it has its own: the palette
    (``decoding.consensus``) and the training images' bigram (``decoding.contrast``)."""
    if model.palette is None:
        model.use_palette(judge.palette)
    if model.bigram is None:
        model.use_training_images(judge.train)


@torch.no_grad()
def bits_per_pixel(model, images: torch.Tensor, prefix_len: int, batch_size: int = 80) -> float:
    """Teacher-forced bits per pixel of everything after the first ``prefix_len`` pixels."""
    with evaluating(model):
        losses = [
            model.token_losses(chunk.to(model.device))[:, prefix_len - 1 :].cpu() for chunk in images.split(batch_size)
        ]
    return float(torch.cat(losses).mean() / math.log(2))


def detection_rate(classifier: PokemonClassifier, images: torch.Tensor) -> float:
    """PDR of ``(N, seq_len)`` images by ``classifier``: the share it scores above 0.5."""
    pdr = PokemonDetectionRate()
    pdr.update(score_images(classifier, images))
    return float(pdr.compute())


def evaluate_new(
    model, judge: QualityJudge, first_pixels: torch.Tensor, decoding: Decoding
) -> tuple[dict, torch.Tensor]:
    """Draws new images from ``(N, 1)`` first pixels with ``decoding`` (``predict.py --split new``); their scores,
    and them.

    The FIDs compare them with the judge's reference images (the dev split), as for completions; nothing
    of those images was given, so the ``real`` reference point, not ``nearest``, is the one to compare with.
    """
    use_judge_data(model, judge)
    start = time.perf_counter()
    images = complete_prefixes(model, first_pixels, decoding)
    decode_s = time.perf_counter() - start
    results = judge(images)
    results["decoding"] = vars(decoding)
    results["decode_s"] = decode_s
    return results, images


def evaluate_model(model, judge: QualityJudge, decoding: Decoding) -> tuple[dict, torch.Tensor]:
    """Completes the prefixes of the judge's reference images (the dev split) with ``decoding``; their scores, and
    them."""
    dev, prefix_len = judge.reference, model.hparams.prefix_len
    use_judge_data(model, judge)
    start = time.perf_counter()
    completions = complete_prefixes(model, dev[:, :prefix_len], decoding)
    decode_s = time.perf_counter() - start  # decoding alone: Inception features take far longer on a CPU
    results = judge(completions)
    results["pixel_accuracy"] = float((completions[:, prefix_len:] == dev[:, prefix_len:]).float().mean())
    results["bits_per_pixel"] = bits_per_pixel(model, dev, prefix_len)
    results["decoding"] = vars(decoding)
    results["decode_s"] = decode_s
    return results, completions


def classifier_scorer(path: str | Path):
    """A best-of-N reranker: the classifier at ``path`` scoring palette-index images, on their device."""
    classifier = load_classifier(path)

    def score(images: torch.Tensor) -> torch.Tensor:
        return score_images(classifier.to(images.device), images)

    return score


def table(results: dict) -> str:
    """The results as aligned ``name  value`` lines, numbers with 4 decimals, reference points explained."""
    width = max(map(len, results))
    lines = []
    for name, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else json.dumps(value) if isinstance(value, dict) else value
        note = next((note for kind, note in REFERENCE_NOTES.items() if name.endswith(f"_ref_{kind}")), None)
        lines.append(f"{name:<{width}}  {shown}" + (f"  <- {note}" if note else ""))
    return "\n".join(lines)

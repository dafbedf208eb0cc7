"""The course's two scores, measured locally: PDR (a torchmetrics Metric) and FID (torchmetrics' own).

FID comes in two flavours, and every caller reports which one it used:

- ``classifier``: the penultimate layer of our :class:`PokemonClassifier` (offline, 64 dims). Its
  numbers rank models but are not on the course's scale.
- ``inception``: Inception-v3 pool features, as the course's grader. Needs ``torch-fidelity`` and
  its weights file; without them this raises :class:`FeaturesUnavailable`, it never falls back.
"""

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

from lightning_modules.classifier import PokemonClassifier

FeatureKind = Literal["classifier", "inception"]
InceptionResize = Literal["bilinear", "nearest"]
INCEPTION_SIZE = 299


class FeaturesUnavailable(RuntimeError):
    """The requested FID features cannot be computed here; the message says what to install or pass."""


class PokemonDetectionRate(Metric):
    """Share of images whose classifier score exceeds ``threshold`` (the course's PDR).

    ``update`` takes the scores (probabilities), not the images, so whoever already scored the
    images (best-of-N reranking, the evaluation table) does not pay for a second pass.

    Args:
        threshold: Scores above it count as "looks like a Pokémon".
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold
        self.add_state("detected", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor) -> None:
        self.detected += (scores > self.threshold).sum()
        self.total += scores.numel()

    def compute(self) -> torch.Tensor:
        if self.total == 0:
            raise RuntimeError("PokemonDetectionRate: no images were scored")
        return self.detected.float() / self.total


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


class NearestUpscale(nn.Module):
    """Upscales pixel art to Inception's 299 x 299 by repeating pixels, then applies ``inner``."""

    def __init__(self, inner: nn.Module, num_features: int) -> None:
        super().__init__()
        self.inner = inner
        self.num_features = num_features

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.inner(F.interpolate(rgb, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="nearest"))


def build_fid(
    features: FeatureKind = "classifier",
    classifier: PokemonClassifier | None = None,
    inception_weights: str | None = None,
    inception_resize: InceptionResize = "bilinear",
) -> tuple[FrechetInceptionDistance, str]:
    """An FID metric taking uint8 ``(N, 3, H, W)`` images, and a description of its features.

    Args:
        features: ``classifier`` (offline) or ``inception`` (the course's; needs torch-fidelity).
        classifier: The classifier whose penultimate layer gives ``classifier`` features.
        inception_weights: Local file of torch-fidelity's Inception weights
            (``pt_inception-2015-12-05-6726825d.pth``); None lets torch-fidelity download them.
        inception_resize: How 20 x 20 images reach 299 x 299: ``bilinear`` is torchmetrics' own
            (antialiased bilinear inside its Inception wrapper, blurring the pixels), ``nearest``
            repeats pixels first (sharp blocks; the grader's choice is unknown).
    """
    if features == "classifier":
        if classifier is None:
            raise FeaturesUnavailable("FID with classifier features needs a classifier checkpoint (--classifier PATH)")
        extractor = ClassifierFeatures(classifier)
        return FrechetInceptionDistance(feature=extractor), f"classifier penultimate layer ({extractor.num_features}-d)"
    return _inception_fid(inception_weights, inception_resize)


def _inception_fid(weights: str | None, resize: InceptionResize) -> tuple[FrechetInceptionDistance, str]:
    if not _TORCH_FIDELITY_AVAILABLE:
        raise FeaturesUnavailable(
            "FID with Inception features needs torch-fidelity: `pip install --no-deps torch-fidelity` "
            "(plus a torchvision matching your torch; --no-deps keeps pip from replacing torch), "
            "and --inception_weights pt_inception-2015-12-05-6726825d.pth when offline; or use --features classifier"
        )
    if weights is not None and not Path(weights).is_file():
        raise FeaturesUnavailable(f"--inception_weights: {weights} does not exist")
    try:
        fid = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=weights)
    except Exception as error:  # torch-fidelity downloads the weights when no file is given
        raise FeaturesUnavailable(
            f"could not load the Inception-v3 weights ({type(error).__name__}: {error}); "
            "pass --inception_weights pt_inception-2015-12-05-6726825d.pth (a local copy)"
        ) from None
    description = "Inception-v3 pool (2048-d), bilinear resize to 299 by torchmetrics"
    if resize == "nearest":
        fid.inception = NearestUpscale(fid.inception, 2048)
        description = "Inception-v3 pool (2048-d), nearest upscale to 299"
    return fid, description

"""Scores the model by what the course grades, during training: dev FID and PDR."""

from dataclasses import replace

import lightning as L
import torch

from checkpointing import load_classifier
from datamodules.render import to_rgb
from evaluation.metrics import FeatureKind, PokemonDetectionRate, build_fid


class QualityMetrics(L.Callback):
    """Completes the dev prefixes during validation and logs ``val/fid`` (with a classifier, ``val/pdr`` too).

    Each validation batch's prefixes are completed with the module's ``decoding`` (seed included,
    so epochs differ only by what the model learnt), one sample each: ``best_of`` is left to prediction,
    whose reranker is trained after the model (``callbacks.TrainReranker``). ``val/fid`` uses Inception features (the
    course's) by default; a trained :class:`PokemonClassifier` adds ``val/pdr`` and, beside
    Inception's, the classifier-feature ``val/fid_classifier``. FID and PDR are torchmetrics
    metrics, summed over batches and devices; the dev images' features are extracted at the first
    scored validation only. A stock ``ModelCheckpoint(monitor="val/fid", mode="min")`` then keeps
    the best-looking checkpoint; give it the same ``every_n_epochs`` as this callback, or it finds
    no ``val/fid``.

    Inception costs about 0.25-0.9 s per image on one CPU thread: some 20-70 s for the 80 dev
    completions of each scored validation. ``features: classifier`` is the cheap alternative.

    Args:
        classifier: Checkpoint of a ``PokemonClassifier`` (``train.py --config configs/classifier.yaml``);
            None logs ``val/fid`` alone.
        every_n_epochs: Score the validations that end an epoch divisible by this (counting from 1).
        features: Features of ``val/fid``: ``inception`` (the course's) or ``classifier`` (needs ``classifier``).
    """

    def __init__(
        self, classifier: str | None = None, every_n_epochs: int = 1, features: FeatureKind = "inception"
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError("QualityMetrics: every_n_epochs must be at least 1")
        self.classifier_path = classifier
        self.every_n_epochs = every_n_epochs
        self.features = features

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Loaded here, not in __init__, so a bad path fails before training, not at the first validation.
        self.classifier = load_classifier(self.classifier_path, pl_module.device) if self.classifier_path else None
        data = getattr(trainer, "datamodule", None)
        if hasattr(data, "palette"):
            self.palette, self.shape = data.palette, (data.image_height, data.image_width)
        elif self.classifier is not None:
            self.palette, self.shape = self.classifier.palette.cpu(), (self.classifier.height, self.classifier.width)
        else:
            raise ValueError("QualityMetrics: needs a data module with a palette, or a classifier, to render images")
        kinds = {"val/fid": self.features}
        if self.classifier is not None and self.features != "classifier":
            kinds["val/fid_classifier"] = "classifier"
        # The dev images are the same every validation: their features are kept through reset().
        self.fids = {key: build_fid(kind, self.classifier, reset_real_features=False)[0] for key, kind in kinds.items()}
        self.pdr = PokemonDetectionRate() if self.classifier is not None else None
        self.reference_done = False

    def _active(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _metrics(self) -> dict:
        return {**self.fids, **({"val/pdr": self.pdr} if self.pdr is not None else {})}

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer):  # Lightning may have moved the module since setup
            for metric in self._metrics().values():
                metric.to(pl_module.device)
            if self.classifier is not None:
                self.classifier.to(pl_module.device)

    def _render(self, images: torch.Tensor) -> torch.Tensor:
        return to_rgb(images, self.palette, *self.shape)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self._active(trainer):
            return
        images = batch.to(pl_module.device)
        completions = pl_module.complete(
            images[:, : pl_module.hparams.prefix_len], replace(pl_module.decoding, best_of=1)
        )
        with torch.no_grad():
            for fid in self.fids.values():
                if not self.reference_done:
                    fid.update(self._render(images), real=True)
                fid.update(self._render(completions), real=False)
            if self.pdr is not None:
                self.pdr.update(self.classifier.probability(completions))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active(trainer):
            return
        # compute() already sums the states over devices, so every device logs the same value.
        metrics = self._metrics()
        pl_module.log_dict({key: metric.compute() for key, metric in metrics.items()}, batch_size=1)
        for metric in metrics.values():
            metric.reset()  # the FIDs keep the dev images' features
        self.reference_done = True

"""Scores the model by what the course grades, during training: dev FID and PDR."""

import lightning as L
import torch

from evaluation.scoring import load_classifier
from evaluation.metrics import FeatureKind, PokemonDetectionRate, build_fid


class QualityMetrics(L.Callback):
    """Completes the dev prefixes during validation and logs ``val/fid`` and ``val/pdr``.

    Each validation batch's prefixes are completed with the module's ``decoding`` (seed included,
    so epochs differ only by what the model learnt) and judged by a trained
    :class:`PokemonClassifier`. FID and PDR are torchmetrics metrics, summed over batches and
    devices. A stock ``ModelCheckpoint(monitor="val/fid", mode="min")`` then keeps the best-looking
    checkpoint; give it the same ``every_n_epochs`` as this callback, or it finds no ``val/fid``.

    Args:
        classifier: Checkpoint of a ``PokemonClassifier`` (``train.py --config configs/classifier.yaml``).
        every_n_epochs: Score the validations that end an epoch divisible by this (counting from 1).
        features: FID features: ``classifier`` (offline) or ``inception`` (needs torch-fidelity and weights).
        inception_weights: Local Inception-v3 weights for ``features: inception``.
    """

    def __init__(
        self,
        classifier: str,
        every_n_epochs: int = 1,
        features: FeatureKind = "classifier",
        inception_weights: str | None = None,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError("QualityMetrics: every_n_epochs must be at least 1")
        self.classifier_path = classifier
        self.every_n_epochs = every_n_epochs
        self.features = features
        self.inception_weights = inception_weights

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Loaded here, not in __init__, so a bad path fails before training, not at the first validation.
        self.classifier = load_classifier(self.classifier_path, pl_module.device)
        self.fid, self.feature_name = build_fid(self.features, self.classifier, self.inception_weights)
        self.fid = self.fid.to(pl_module.device)
        self.pdr = PokemonDetectionRate().to(pl_module.device)

    def _active(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self._active(trainer):
            return
        images = batch.to(pl_module.device)
        completions = pl_module.complete(images[:, : pl_module.hparams.prefix_len])
        self.classifier.to(pl_module.device)  # Lightning may have moved the module since setup
        with torch.no_grad():
            self.fid.update(self.classifier.render(images), real=True)
            self.fid.update(self.classifier.render(completions), real=False)
            self.pdr.update(self.classifier.probability(completions))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active(trainer):
            return
        # compute() already sums the states over devices, so every device logs the same value.
        pl_module.log_dict({"val/fid": self.fid.compute(), "val/pdr": self.pdr.compute()}, batch_size=1)
        self.fid.reset()
        self.pdr.reset()

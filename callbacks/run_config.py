"""Saves the run's resolved ``config.yaml`` when training starts, and keeps the data's palette in each checkpoint."""

from pathlib import Path
from typing import Any

import yaml
from lightning import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback

from files.atomic_write import atomic_write_bytes


class RunConfig(SaveConfigCallback):
    """Lightning's ``SaveConfigCallback``, writing ``config.yaml`` once training starts, and atomically.

    The stock callback writes in ``setup``, before the checkpoint is restored: a resume that
    Lightning then refuses would already have replaced the run's config, and a full disk would
    leave half a file. Prediction writes no config at all.

    It also keeps the data's palette (its ``colormap.txt`` colours) in every checkpoint, under
    ``callbacks/RunConfig``: token ``i`` means colour ``i`` of that palette, so a resume on data with
    other colours is refused before it starts (``cli.resume.check_resume``) instead of silently
    retraining every token on a new colour.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.palette = getattr(trainer.datamodule, "palette", None)  # no config written here: see on_train_start

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir  # asked on every rank: it broadcasts rank zero's answer
        if trainer.is_global_zero and log_dir is not None:
            text = self.parser.dump(self.config, skip_unset=False)
            atomic_write_bytes(Path(log_dir) / self.config_filename, text.encode())
        if trainer.is_global_zero:
            self.save_config(trainer, pl_module, "fit")

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Logs the whole resolved config (seed, trainer, callbacks, data, model) to the run's loggers,
        beside the model's hyperparameters that Lightning logs: what ``config.yaml`` holds, under the same keys."""
        config = yaml.safe_load(self.parser.dump(self.config, skip_unset=False))
        for logger in trainer.loggers:
            logger.log_hyperparams(config)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        # A top-level key, not this callback's state_dict: prediction builds no RunConfig, and Lightning warns
        # about every callback state in a checkpoint that the predicting trainer lacks.
        palette = getattr(self, "palette", None)
        if palette is not None:
            checkpoint[PALETTE_KEY] = palette.tolist()


PALETTE_KEY = "palette"


def saved_palette(checkpoint: dict[str, Any]) -> list[list[int]] | None:
    """The palette a checkpoint was trained with, as ``[[r, g, b], ...]``; None for one saved before it was kept."""
    palette = checkpoint.get(PALETTE_KEY)
    return palette if isinstance(palette, list) else None

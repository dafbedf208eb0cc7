"""What validations cost a run of a given length: how many it makes, and the seconds one takes."""

import math
import time
from unittest import mock

import lightning as L
import torch
from lightning.pytorch.utilities.seed import isolate_rng


def validation_count(steps: float, per_epoch: int, every: int) -> int:
    """How many validations a run of ``steps`` validating every ``every`` epochs makes, its last step's included."""
    if math.isinf(steps):
        return 0
    epochs = int(steps) // per_epoch
    return epochs // every + (1 if int(steps) % per_epoch or epochs % every else 0)


def time_validation(trainer: L.Trainer, pl_module: L.LightningModule) -> float:
    """Seconds one pass of the module's ``validation_step`` over the dev data takes, as in this epoch.

    The pass changes nothing: no gradients, the random state restored, nothing logged, the module
    back in training mode.
    """
    source = trainer.datamodule if trainer.datamodule is not None else pl_module
    start = time.monotonic()
    with isolate_rng(), torch.no_grad(), trainer.precision_plugin.val_step_context():
        silent = lambda *args, **kwargs: None  # noqa: E731
        with mock.patch.object(pl_module, "log", silent), mock.patch.object(pl_module, "log_dict", silent):
            pl_module.eval()
            try:
                for index, batch in enumerate(source.val_dataloader()):
                    pl_module.validation_step(trainer.strategy.batch_to_device(batch), index)
            finally:
                pl_module.train()
    return time.monotonic() - start

"""Shows what the model draws while it trains: dev prefixes completed every few epochs."""

from dataclasses import replace
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from datamodules.render import grid, save_png


class SampleImages(L.Callback):
    """Completes a fixed set of dev prefixes every few epochs and shows each truth beside its completion.

    The grid is saved as ``<run folder>/samples/epoch_<NNN>.png`` (NNN = epochs done) and logged to
    W&B under ``key`` when the logger is a ``WandbLogger``. Completions use the module's
    ``decoding``, seed included, so grids of different epochs differ only by what the model learnt, with
    one sample per prefix: ``best_of`` is left to prediction, whose reranker is trained after the model
    (``callbacks.TrainReranker``), and would cost ``best_of`` times as much here.

    Args:
        every_n_epochs: Draw after every this many training epochs.
        num_images: How many dev images to complete (the first ones of the dev split).
        key: The W&B key of the image.
    """

    def __init__(self, every_n_epochs: int = 5, num_images: int = 10, key: str = "samples/dev") -> None:
        if every_n_epochs < 1 or num_images < 1:
            raise ValueError("SampleImages: every_n_epochs and num_images must be at least 1")
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images
        self.key = key

    @rank_zero_only  # the other devices have nothing to add to a picture
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epochs = trainer.current_epoch + 1
        if epochs % self.every_n_epochs or trainer.sanity_checking:
            return
        data = trainer.datamodule
        truth = data.splits["dev"][: self.num_images]
        prefixes = truth[:, : data.prefix_len].to(pl_module.device)
        completed = pl_module.complete(prefixes, replace(pl_module.decoding, best_of=1)).cpu()
        pairs = torch.stack([truth, completed], dim=1).flatten(0, 1)  # truth, completion, truth, ...
        picture = grid(
            pairs,
            data.palette,
            data.image_height,
            data.image_width,
            columns=2 * min(5, len(truth)),  # even, so each completion sits right of its truth
            boundary_row=data.prefix_len // data.image_width,
        )
        folder = Path(trainer.default_root_dir) / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        save_png(picture, folder / f"epoch_{epochs:03d}.png")
        caption = f"epoch {epochs}: truth (left) and completion (right) of {len(truth)} dev images"
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=self.key, images=[picture.numpy()], caption=[caption], step=trainer.global_step)

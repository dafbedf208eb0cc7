"""Wall-clock seconds since fit start, logged with every validation's metrics, for time-to-quality comparisons."""

import time

import lightning as L
from lightning.pytorch.utilities import rank_zero_only


class ElapsedTime(L.Callback):
    """Logs ``time/elapsed_s``, the wall-clock seconds since fit start, in the same row as each validation's
    metrics, and ``time/fit_s``, the whole fit's, when it ends: to every logger the trainer has
    (``CSVLogger``'s ``metrics.csv``, which ``bench/time_to_quality.py`` reads, and W&B).

    The seconds count training, validation, checkpoints and sample images, everything a recipe spends,
    but not the interpreter's start and imports. Lightning's loggers record steps and epochs, not seconds;
    its ``Timer`` keeps seconds but logs none, and ``ThroughputMonitor``'s training time leaves validation out.
    ``bench/time_to_quality.py`` adds it to train.py with ``--trainer.callbacks+=callbacks.ElapsedTime``.
    """

    def __init__(self) -> None:
        self.start: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.start is not None and not trainer.sanity_checking:
            pl_module.log("time/elapsed_s", self.elapsed(), rank_zero_only=True)

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.start is None:
            return
        for logger in trainer.loggers:  # after the fit loop, so through the loggers rather than pl_module.log
            logger.log_metrics({"time/fit_s": self.elapsed(), "epoch": trainer.current_epoch}, step=trainer.global_step)
            logger.save()

"""Saves ``last.ckpt`` when a run is stopped early, so that ``--ckpt_path last`` continues it."""

import os
import signal
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities import rank_zero_info

from files.atomic_write import WriteError
from lightning_modules.pixel_lm import NonFiniteLossError


class StopCheckpoint(Checkpoint):
    """Saves ``last.ckpt`` when training stops early: Lightning's ``OnExceptionCheckpoint``, made safe for that file.

    A run stopped by Ctrl-C, ``kill`` (SIGTERM) or an error saves its state, and
    ``python train.py --config ... --ckpt_path last`` continues exactly where it stopped. Unlike
    the stock callback:

    - Ctrl-C waits for the end of the current batch, as Lightning already does for SIGTERM, so the
      checkpoint never holds half an optimizer step. A second Ctrl-C stops at once.
    - Nothing is saved before this process has trained a step (a failed start or restore must not
      overwrite a good ``last.ckpt``), nor after a non-finite loss (those weights are not worth
      resuming; the last periodic ``last.ckpt`` is), nor after a failed save (a full disk: the
      previous ``last.ckpt`` is kept, and a second try would only bury the first error).
    - The file stays after a run that ends normally (the stock callback deletes it), and a new run
      does not silently resume from it (with the stock callback, Lightning turns ``fit(ckpt_path=None)``
      into ``ckpt_path="last"``). Hence a ``Checkpoint`` of its own rather than a subclass.

    Args:
        dirpath: Folder of the checkpoint; the CLI sets it to the run's ``checkpoints/``
            (None: ``<trainer.default_root_dir>/checkpoints``).
        filename: Checkpoint name without ``.ckpt``; ``last`` is what ``--ckpt_path last`` resumes.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "last") -> None:
        self.dirpath = dirpath
        self.filename = filename
        self._first_step: int | None = None
        self._interrupted = False
        self._previous_handler: Any = None

    @property
    def ckpt_path(self) -> str:
        return os.path.join(self.dirpath or "", f"{self.filename}.ckpt")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.dirpath = self.dirpath or os.path.join(trainer.default_root_dir, "checkpoints")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._first_step = trainer.global_step  # after a resume: the restored step
        self._interrupted = False
        self._previous_handler = signal.getsignal(signal.SIGINT)
        try:
            signal.signal(signal.SIGINT, self._defer_interrupt)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._previous_handler = None

    def _defer_interrupt(self, signum: int, frame: Any) -> None:
        rank_zero_info("\nCtrl-C: stopping after this batch (press again to stop at once) ...")
        self._interrupted = True
        self._restore_handler()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self._interrupted:
            raise KeyboardInterrupt  # Lightning then calls on_exception and exits with status 1

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_handler()
        trained = self._first_step is not None and trainer.global_step > self._first_step
        if not trained or isinstance(exception, (NonFiniteLossError, WriteError)):
            return
        # Atomic (checkpointing.io): keeps the old file if it fails. weights_only=False is Lightning's default,
        # said here so it does not print that it chose it.
        trainer.save_checkpoint(self.ckpt_path, weights_only=False)
        rank_zero_info(
            f"Stopped at step {trainer.global_step} ({type(exception).__name__}); saved {self.ckpt_path}. "
            "Continue with the same command plus --ckpt_path last"
        )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore_handler()  # and keep the file, unlike the stock callback

    def _restore_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

"""Refusing, before training starts, a checkpoint that cannot continue into the configured run."""

from lightning.pytorch import LightningModule

from checkpointing import load_checkpoint
from checkpointing.checkpoint_check import CheckpointMismatchError, check_checkpoint


def check_resume(model: LightningModule, ckpt_path: str) -> None:
    """Raises :class:`CheckpointMismatchError` in one line unless ``ckpt_path`` can continue into ``model``.

    Lightning checks the checkpoint only after the run has begun writing (``config.yaml``, W&B's
    files), so a refused resume would lose the run's own record; this way its folder stays as it was.
    Checked: the weights' names and shapes, and the optimizer (its state would not fit another one).
    """
    checkpoint = load_checkpoint(ckpt_path)  # weights-only: a file holding code is refused in one line
    check_checkpoint(checkpoint, model, model.hparams, ckpt_path)
    saved = (checkpoint.get("hyper_parameters") or {}).get("optimizer", "adamw")
    wanted = model.hparams.get("optimizer", "adamw")
    if saved != wanted:  # the optimizer state would not fit: Lightning would fail mid-restore
        raise CheckpointMismatchError(
            f"{ckpt_path}: trained with model.optimizer={saved}, the config asks for {wanted}; "
            f"resume with --model.init_args.optimizer={saved}"
        )

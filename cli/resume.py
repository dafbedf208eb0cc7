"""Refusing, before training starts, a checkpoint that cannot continue into the configured run."""

from lightning.pytorch import LightningModule

from callbacks.run_config import saved_palette
from checkpointing import load_checkpoint
from checkpointing.checkpoint_check import CheckpointMismatchError, check_checkpoint
from datamodules import PokemonDataModule


def check_resume(model: LightningModule, data: PokemonDataModule, ckpt_path: str) -> None:
    """Raises :class:`CheckpointMismatchError` in one line unless ``ckpt_path`` can continue into ``model`` on ``data``.

    Lightning checks the checkpoint only after the run has begun writing (``config.yaml``, W&B's
    files), so a refused resume would lose the run's own record; this way its folder stays as it was.
    Checked: the weights' names and shapes, the optimizer (its state would not fit another one) and
    the palette (token ``i`` is colour ``i`` of the palette it was trained with).
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
    trained_on, palette = saved_palette(checkpoint), data.palette.tolist()
    if trained_on is not None and trained_on != palette:
        where = "data.hub_palette" if getattr(data, "hub_dataset", None) else f"{data.data_dir}/colormap.txt"
        common = min(len(trained_on), len(palette))
        index = next((i for i in range(common) if trained_on[i] != palette[i]), common)
        there = trained_on[index] if index < len(trained_on) else "none"
        here = palette[index] if index < len(palette) else "none"
        raise CheckpointMismatchError(
            f"{ckpt_path}: trained with another palette ({len(trained_on)} colours; colour {index} is {there} there, "
            f"{here} in {where}); resume with the data it was trained on (data.data_dir)"
        )

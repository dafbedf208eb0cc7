"""Trains the classifier that reranks best-of-N samples, once the language model's training ends."""

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from callbacks.wandb_logger import reranker_environment
from checkpointing.run_folders import RERANKER_FOLDER, RUN_DIR_ENV, newest_checkpoint

TRAIN_SCRIPT = Path(__file__).resolve().parent.parent / "train.py"


class RerankerError(RuntimeError):
    """The reranker's training failed; its own error is printed above. The model's checkpoints are kept."""


class TrainReranker(L.Callback):
    """When ``fit`` ends, trains a Pokémon classifier into ``<run folder>/reranker/``, so that
    ``predict.py`` keeps the best of ``decoding.best_of`` samples by it with no ``--reranker`` to pass.

    The classifier learns real training images against made-up failed completions
    (``configs/classifier.yaml``, ``datamodules/negatives.py``), not the language model's samples,
    so it can train after the language model, on the same data, in a few minutes. It runs as a
    ``train.py`` process of its own, exactly ``python train.py --config CONFIG ARGS --data.data_dir
    <the model's> --trainer.default_root_dir <run>/reranker`` by hand: its own seed, run folder, W&B run
    and one-line errors. (A second LightningCLI in this process would share W&B's current run and the
    run-folder hand-over of ``cli/fit.py``.) A run that has a reranker already (resumed after it finished)
    keeps it; a run stopped by Ctrl-C or SIGTERM does not reach the end of ``fit`` and trains none.

    Args:
        config: The classifier's config (a path, or a name in ``configs/``).
        args: More of its command line, e.g. ``["--trainer.max_epochs=50"]``.
    """

    def __init__(self, config: str = "classifier.yaml", args: list[str] | None = None) -> None:
        self.config = config
        self.args = list(args or [])

    @rank_zero_only  # one classifier, trained once
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.interrupted or getattr(trainer, "received_sigterm", False):
            return
        folder = Path(trainer.default_root_dir) / RERANKER_FOLDER
        if newest_checkpoint(folder, "best") is not None:
            rank_zero_info(f"Reranker: {folder} has one already")
            return
        command = [sys.executable, str(TRAIN_SCRIPT), "--config", self.config, *self.args]
        command += [*data_arguments(trainer.datamodule), "--trainer.default_root_dir", str(folder)]
        rank_zero_info(f"Training the reranker: {' '.join(command[1:])}")
        env = {name: value for name, value in os.environ.items() if name != RUN_DIR_ENV}  # a run folder of its own
        env.update(reranker_environment(trainer))  # its W&B run joins the model's group, as job type "reranker"
        finished = subprocess.run(command, env=env, check=False)
        if finished.returncode:
            raise RerankerError(f"reranker: {' '.join(command[1:])} failed (exit status {finished.returncode})")
        best = newest_checkpoint(folder, "best")
        if best is None:
            raise RerankerError(f"reranker: training wrote no checkpoints/best.ckpt under {folder} (it never validated)")
        rank_zero_info(f"Reranker: {best}")


def data_arguments(datamodule) -> list[str]:
    """The command-line arguments that give the classifier the language model's images."""
    if getattr(datamodule, "hub_dataset", None) is not None:
        return ["--data.hub_dataset", datamodule.hub_dataset, "--data.hub_palette", str(datamodule.hub_palette)]
    return ["--data.data_dir", str(datamodule.data_dir)]

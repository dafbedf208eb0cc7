"""Trains the classifier that reranks best-of-N samples, once the language model's training ends."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

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
    SIGTERM or Ctrl-C while the reranker trains is passed on to it: both processes stop, with the
    reranker's one line (``error: stopped by SIGTERM``), and the language model's run stays as it is.

    Args:
        config: The classifier's config (a name in ``configs/``, or a path).
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
        returncode, signum = run_passing_on_signals(command, env)
        if signum is not None:
            if returncode == 128 + signum:  # it stopped cleanly and said so in its one line: nothing to add
                raise SystemExit(returncode)
            raise SIGTERMException() if signum == signal.SIGTERM else KeyboardInterrupt()
        if returncode:
            raise RerankerError(f"reranker: {' '.join(command[1:])} failed (exit status {returncode})")
        best = newest_checkpoint(folder, "best")
        if best is None:
            raise RerankerError(
                f"reranker: training wrote no checkpoints/best.ckpt under {folder} (it never validated)"
            )
        rank_zero_info(f"Reranker: {best}")


def run_passing_on_signals(command: list[str], env: dict[str, str]) -> tuple[int, int | None]:
    """Runs ``command`` to its end; returns its exit status and the signal (SIGTERM, SIGINT) that stopped it, if any.

    Lightning has put back the default handlers before ``on_fit_end``, so without this a SIGTERM would
    end this process at once and leave the reranker training on as an orphan. The child gets a
    session of its own, so that Ctrl-C in a terminal reaches it once, through here, and it stops after
    its current step as any training does.
    """
    process = subprocess.Popen(command, env=env, start_new_session=True)
    received: list[int] = []

    def pass_on(signum: int, frame) -> None:
        received.append(signum)
        process.send_signal(signum)

    main = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, pass_on) for signum in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        returncode = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if process.poll() is None:  # this process is failing for another reason: leave no orphan behind
            process.kill()
            process.wait()
    return returncode, (received[0] if received else None)


def data_arguments(datamodule) -> list[str]:
    """The command-line arguments that give the classifier the language model's images."""
    if getattr(datamodule, "hub_dataset", None) is not None:
        return ["--data.hub_dataset", datamodule.hub_dataset, "--data.hub_palette", str(datamodule.hub_palette)]
    return ["--data.data_dir", str(datamodule.data_dir)]

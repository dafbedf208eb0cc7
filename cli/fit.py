"""The training command line: one folder per run, resumes checked before they start, W&B in the run folder."""

import os
import signal
import sys
import threading
from pathlib import Path

from jsonargparse import Namespace

from callbacks.run_config import RunConfig
from checkpointing import load_checkpoint
from checkpointing.run_folders import (
    RUN_DIR_ENV,
    RUNS,
    WANDB_FOLDER,
    check_writable_run,
    claim_next_version,
    is_unused,
    model_kind,
    newest_checkpoint,
    release_unused,
    wandb_run_id,
)
from cli import quiet_warnings
from cli.base import PixelCLI
from cli.errors import Stopped
from cli.resume import check_resume
from cli.wandb_login import wandb_logged_in


class FitCLI(PixelCLI):
    """LightningCLI for ``train.py``: each run gets its own folder, ``<trainer.default_root_dir>/version_<N>/``.

    The folder holds ``checkpoints/``, the resolved ``config.yaml`` (``callbacks.RunConfig``), W&B's
    files and sample images. ``--ckpt_path last`` resumes the newest run in its own folder (and its
    own W&B run); ``--ckpt_path <run>/checkpoints/X.ckpt`` resumes that run. A run that fails before
    it writes anything leaves no folder behind. Train with :meth:`fit`.

    Args:
        args: The command line (default: ``sys.argv[1:]``).
    """

    ckpt_help = (
        "Checkpoint to resume from: a path, or 'last' for last.ckpt of the newest run under "
        "trainer.default_root_dir (a new run when there is none)."
    )

    def __init__(self, args: list[str] | None = None, **kwargs) -> None:
        self.run_dir: Path | None = None
        self._claimed = False  # this process created run_dir (not a resume, not a DDP worker)
        kwargs.setdefault("save_config_callback", RunConfig)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})  # a resumed run rewrites its config
        try:
            super().__init__(args, **kwargs)
        except BaseException:
            self._release_unused()
            raise

    def before_instantiate_classes(self) -> None:
        config = self.config
        root = Path(config.trainer.default_root_dir or RUNS)
        self.run_dir, config.ckpt_path = self._fit_run(root, config.ckpt_path)
        if config.ckpt_path is not None:  # weights-only and of the right kind, before Lightning reads it
            load_checkpoint(config.ckpt_path, model_kind(config.model.class_path))
            quiet_warnings.resuming_from(config.ckpt_path)  # its folder is not empty, and should not be
        config.trainer.default_root_dir = str(self.run_dir)
        place_run_files(config, self.run_dir)

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        if self.config.ckpt_path:
            check_resume(self.model, self.datamodule, self.config.ckpt_path)

    def fit(self) -> None:
        """``trainer.fit`` of the run; Ctrl-C ends in :class:`~cli.errors.Stopped` (130), not Lightning's status 1.

        SIGTERM is left to Lightning meanwhile, which stops after the current step (``callbacks.StopCheckpoint``
        then saves ``last.ckpt``); a handler that raised at once would stop in the middle of a step.
        """
        worker = RUN_DIR_ENV in os.environ
        os.environ[RUN_DIR_ENV] = str(self.run_dir)  # DDP workers re-run train.py: they take this folder
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, signal.SIG_DFL) if main else None
        try:
            self.trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=self.config.ckpt_path)
        except SystemExit as exit:
            self._release_unused()
            if type(exit) is SystemExit and exit.code == 1 and self.trainer.interrupted:  # Lightning after Ctrl-C
                raise Stopped(signal.SIGINT) from None
            raise
        except BaseException:
            self._release_unused()
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if not worker:
                os.environ.pop(RUN_DIR_ENV, None)

    def _release_unused(self) -> None:
        """Removes the run folder this process claimed if the run wrote nothing there (W&B files of a failed start)."""
        if not self._claimed or self.run_dir is None or not is_unused(self.run_dir):
            return
        if (self.run_dir / WANDB_FOLDER).exists() and "wandb" in sys.modules:
            import wandb

            if wandb.run is not None:  # its files are about to go: end the run first
                wandb.finish(exit_code=1)
        release_unused(self.run_dir)

    def _fit_run(self, root: Path, ckpt_path: str | None) -> tuple[Path, str | None]:
        """The run folder to write to and the checkpoint to resume from."""
        if RUN_DIR_ENV in os.environ:  # a DDP worker: the launching process has chosen already
            run_dir = Path(os.environ[RUN_DIR_ENV])
            last = run_dir / "checkpoints" / "last.ckpt"
            return run_dir, (str(last) if ckpt_path == "last" and last.is_file() else ckpt_path)
        if ckpt_path == "last":
            found = newest_checkpoint(root, "last")
            if found is not None:
                return found.parent.parent, str(found)
            print(f"No last.ckpt under {root}: starting a new run.")
            ckpt_path = None
        elif ckpt_path is not None and Path(ckpt_path).parent.name == "checkpoints":
            return Path(ckpt_path).parent.parent, ckpt_path  # resuming a run continues in its folder
        self._claimed = True
        return claim_next_version(root), ckpt_path


def class_configs(value) -> list[Namespace]:
    """The ``class_path``/``init_args`` entries of a logger or callbacks setting."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, Namespace) and "class_path" in item]


def place_run_files(config: Namespace, run_dir: Path) -> None:
    """Points checkpoints and W&B at the run folder (W&B at its earlier run when resuming), and checks that
    both can be written before anything starts."""
    for callback in class_configs(config.trainer.callbacks or []):
        if callback.class_path.endswith("Checkpoint") and not callback.init_args.get("dirpath"):
            callback.init_args.dirpath = str(run_dir / "checkpoints")
    for logger in class_configs(config.trainer.logger):
        if logger.class_path.endswith("CSVLogger"):  # its metrics.csv beside the run's other files
            logger.init_args.save_dir, logger.init_args.name = str(run_dir), "csv"
    wandb = [logger for logger in class_configs(config.trainer.logger) if logger.class_path.endswith("WandbLogger")]
    check_writable_run(run_dir, wandb=bool(wandb) and os.environ.get("WANDB_MODE") != "disabled")
    for logger in wandb:
        args = logger.init_args
        args.save_dir = str(run_dir)
        if args.get("id") is None and (previous := wandb_run_id(run_dir)):
            args.id, args.resume = previous, "allow"
        if "WANDB_MODE" not in os.environ and not args.get("offline") and not wandb_logged_in():
            args.offline = True
            print(f"W&B: not logged in, logging offline to {run_dir / WANDB_FOLDER} (upload later: wandb sync)")

"""Run folders, ``<root>/version_<N>/``: claiming a new one, finding runs and their checkpoints, and
whether a run's config may be read without being asked.

A run folder holds ``config.yaml`` (the resolved config it was trained with), ``checkpoints/``,
``samples/``, W&B's ``wandb/`` and, for a language model, the classifier trained with it in ``reranker/``.
"""

import atexit
import os
import re
import shutil
from pathlib import Path

import yaml

from checkpointing.loading import Kind
from files.atomic_write import WriteError

RUNS = Path("runs")  # where the shipped configs put their runs, and where a bare predict.py looks
RUN_DIR_ENV = "POKEMON_RUN_DIR"  # hands the chosen folder to DDP worker processes, which re-run the CLI
RERANKER_FOLDER = "reranker"  # <run>/reranker/version_<N>/: the classifier callbacks.TrainReranker trains with a model
WANDB_FOLDER = "wandb"  # W&B's files in a run folder (WandbLogger's save_dir is the run folder)


def versions(root: Path) -> list[Path]:
    """``version_<N>`` folders under ``root``, oldest first."""
    found = [(int(m.group(1)), p) for p in root.glob("version_*") if (m := re.fullmatch(r"version_(\d+)", p.name))]
    return [path for _, path in sorted(found)]


def newest_checkpoint(root: Path, name: str) -> Path | None:
    """``checkpoints/<name>.ckpt`` of the newest run under ``root`` that has one; ``root``'s own if it is a
    run folder (a run's ``config.yaml`` names its folder as ``trainer.default_root_dir``)."""
    if (own := root / "checkpoints" / f"{name}.ckpt").is_file():
        return own
    for run in reversed(versions(root)):
        if (path := run / "checkpoints" / f"{name}.ckpt").is_file():
            return path
    return None


def run_reranker(checkpoint: Path) -> Path | None:
    """The best.ckpt of the reranker trained with the run that holds ``checkpoint``
    (``<run>/checkpoints/*.ckpt``), or None."""
    if checkpoint.parent.name != "checkpoints":
        return None
    return newest_checkpoint(checkpoint.parent.parent / RERANKER_FOLDER, "best")


def model_kind(class_path: str) -> Kind | None:
    """``PixelLM`` or ``PokemonClassifier``: which of the project's models a config's ``model.class_path``
    builds (None: another). The one test of "is this a PixelLM run or config" in the project; a
    checkpoint file is told by its tensors instead (``checkpointing.loading.checkpoint_kind``)."""
    name = str(class_path).rsplit(".", 1)[-1]
    return name if name in ("PixelLM", "PokemonClassifier") else None


def is_model_run(run: Path) -> bool:
    """Whether ``run`` holds a trained PixelLM (not a classifier) and the config it was trained with."""
    try:
        config = yaml.safe_load((run / "config.yaml").read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    model = config.get("model") if isinstance(config, dict) else None
    return isinstance(model, dict) and model_kind(model.get("class_path", "")) == "PixelLM"


def newest_model_run(root: Path = RUNS) -> Path | None:
    """The run folder under ``root`` whose ``checkpoints/best.ckpt`` was written last, among PixelLM runs."""
    found = [ckpt for ckpt in root.glob("**/version_*/checkpoints/best.ckpt") if is_model_run(ckpt.parent.parent)]
    return max(found, key=lambda ckpt: ckpt.stat().st_mtime).parent.parent if found else None


def is_inside(run: Path, roots: list[Path]) -> bool:
    """Whether ``run`` lies under one of ``roots``, links resolved (a link in ``runs/`` to elsewhere is elsewhere)."""
    run = run.resolve()
    return any(run.is_relative_to(root.resolve()) for root in roots)


def claim_next_version(root: Path) -> Path:
    """Creates the next free ``version_<N>`` under ``root`` and returns it.

    The folder is claimed by ``mkdir``, which only one process can win: two runs started at the same
    moment get two folders instead of writing into one. If the run fails before it writes anything of
    its own, :func:`release_unused` removes the folder again (also at exit, as a last resort).

    Raises:
        WriteError: ``root`` cannot be created or written, in one line.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        runs = versions(root)
        number = int(runs[-1].name.split("_")[1]) + 1 if runs else 0
        while True:
            run_dir = root / f"version_{number}"
            try:
                run_dir.mkdir()
            except FileExistsError:
                number += 1
                continue
            atexit.register(release_unused, run_dir)
            return run_dir
    except OSError as error:
        raise WriteError(
            f"cannot create a run folder under {root} (trainer.default_root_dir): {error.strerror or error}",
            error.errno,
        ) from None


def check_writable_run(run_dir: Path, wandb: bool) -> None:
    """Raises :class:`WriteError` in one line, before training starts, if the run folder (or its
    ``wandb/``) cannot be written."""
    folders = [run_dir] + ([run_dir / WANDB_FOLDER] if wandb else [])
    for folder in folders:
        if folder.exists() and not folder.is_dir():
            raise WriteError(f"cannot write the run's files: {folder} is a file, not a folder")
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):  # also false on a read-only file system
            raise WriteError(f"cannot write the run's files: {folder} is not writable")


def is_unused(run_dir: Path) -> bool:
    """Whether a run folder holds nothing of the run: empty, or only W&B's files of a failed start."""
    try:
        return run_dir.is_dir() and all(entry.name == WANDB_FOLDER for entry in run_dir.iterdir())
    except OSError:
        return False


def release_unused(run_dir: Path) -> None:
    """Removes the run folder if it :func:`is_unused`."""
    try:
        if not is_unused(run_dir):
            return
        shutil.rmtree(run_dir / WANDB_FOLDER, ignore_errors=True)
        run_dir.rmdir()
    except OSError:
        pass  # removing is a courtesy; the run's error is what matters


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the W&B run logged into ``run_dir``, read from W&B's ``latest-run`` link."""
    latest = run_dir / WANDB_FOLDER / "latest-run"
    return os.readlink(latest).rsplit("-", 1)[-1] if latest.is_symlink() else None

"""Run folders (``<root>/version_<N>/``) and the checkpoints in them."""

import re
from pathlib import Path

RUN_DIR_ENV = "POKEMON_RUN_DIR"  # hands the chosen folder to DDP worker processes, which re-run the CLI


def versions(root: Path) -> list[Path]:
    """``version_<N>`` folders under ``root``, oldest first."""
    found = [(int(m.group(1)), p) for p in root.glob("version_*") if (m := re.fullmatch(r"version_(\d+)", p.name))]
    return [path for _, path in sorted(found)]


def newest_checkpoint(root: Path, name: str) -> Path | None:
    """``checkpoints/<name>.ckpt`` of the newest run under ``root`` that has one."""
    for run in reversed(versions(root)):
        if (path := run / "checkpoints" / f"{name}.ckpt").is_file():
            return path
    return None


RERANKER_FOLDER = "reranker"  # <run>/reranker/version_<N>/: the classifier callbacks.TrainReranker trains with a model


def run_reranker(checkpoint: Path) -> Path | None:
    """The best.ckpt of the reranker trained with the run that holds ``checkpoint``
    (``<run>/checkpoints/*.ckpt``), or None."""
    if checkpoint.parent.name != "checkpoints":
        return None
    return newest_checkpoint(checkpoint.parent.parent / RERANKER_FOLDER, "best")

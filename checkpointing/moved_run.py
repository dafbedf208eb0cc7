"""A run folder that was moved (or copied) keeps its checkpoints' bookkeeping when it resumes."""

from pathlib import Path
from typing import Any


def follow_moved_run(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """``checkpoint``, read from ``path``, with its ``ModelCheckpoint`` states moved to ``path``'s folder.

    A ``ModelCheckpoint`` records its folder as an absolute path. Resumed from a run folder that has
    moved since, Lightning warns that "the dirpath has changed" and drops the best score, so the next
    validation would replace ``best.ckpt`` whether it is better or not. A state that names another
    folder of the same name (``.../checkpoints``) than the one the checkpoint is read from is this
    folder before the move: its paths are moved with it. A callback configured with a different
    folder still gets Lightning's warning, which is then true.
    """
    folder = Path(path).resolve().parent
    for state in (checkpoint.get("callbacks") or {}).values():  # ModelCheckpoint's hold a dirpath
        old = state.get("dirpath") if isinstance(state, dict) and "best_model_path" in state else None
        if not old or Path(old) == folder or Path(old).name != folder.name:
            continue

        def moved(file: str | None, old: Path = Path(old)) -> str | None:
            return str(folder / Path(file).relative_to(old)) if file and Path(file).is_relative_to(old) else file

        state["dirpath"] = str(folder)
        for name in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if name in state:
                state[name] = moved(state[name])
        if isinstance(state.get("best_k_models"), dict):
            state["best_k_models"] = {moved(file): score for file, score in state["best_k_models"].items()}
    return checkpoint

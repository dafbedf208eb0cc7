"""Checkpoint files that survive a full disk: Lightning's ``CheckpointIO`` with the save made safe.

Lightning's own save writes the checkpoint to a temporary file in ``$TMPDIR`` and moves it into
place. When the run folder is on another file system the move is a copy onto the old file, so a
disk that fills up half way leaves a truncated ``last.ckpt`` where a good one was. Here the
temporary file lies beside the target and only a complete one replaces it.
"""

import io
import zipfile
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from checkpointing.moved_run import follow_moved_run
from files.atomic_write import atomic_write_bytes


class CheckpointReadError(ValueError):
    """A checkpoint file that cannot be read (truncated or damaged); the message names it."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves keep the previous file whenever they fail.

    A save writes a temporary file in the target's folder (the same file system, so the rename
    cannot turn into a copy), flushes it to the disk and renames it over the target. A failed save
    removes its temporary file, keeps the previous checkpoint and raises
    :class:`~files.atomic_write.WriteError` in one line, e.g. ``no space left on /data to save
    .../last.ckpt (41 MB needed, 12 MB free); the previous last.ckpt is kept``. A checkpoint that
    cannot be read raises :class:`CheckpointReadError` instead of torch's zip-archive error.
    Remote paths (``s3://`` and friends) are saved by Lightning as before.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)  # which refuses storage_options
        path = Path(LocalFileSystem._strip_protocol(str(path)))  # also file://...
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()  # serialized first, as Lightning does: a full disk then shows as ENOSPC, not a zip error
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getbuffer())

    def load_checkpoint(self, path: _PATH, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            checkpoint = super().load_checkpoint(path, *args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as error:  # torch's own: "PytorchStreamReader failed reading zip archive", a bad seek, ...
            if not cut_short(path):
                raise
            reason = (str(error).splitlines() or [""])[0].split(". ")[0] or type(error).__name__
            raise CheckpointReadError(f"{path}: not a readable checkpoint, truncated or damaged ({reason})") from None
        local = isinstance(get_filesystem(path), LocalFileSystem)
        return follow_moved_run(checkpoint, LocalFileSystem._strip_protocol(str(path))) if local else checkpoint


def cut_short(path: _PATH) -> bool:
    """Whether the local file ``path`` is no complete zip archive, as every checkpoint since torch 1.6 is."""
    if not isinstance(get_filesystem(path), LocalFileSystem):
        return False
    return not zipfile.is_zipfile(LocalFileSystem._strip_protocol(str(path)))

"""Checkpoints survive a full disk: a save that fails keeps the previous file and says why in one line."""

import errno
import os
import re
import shutil

import pytest
import torch

from checkpointing.io import AtomicCheckpointIO, CheckpointReadError
from checkpointing.run_folders import RUN_DIR_ENV
from cli.fit import FitCLI
from conftest import TINY
from entry_points import assert_error
from files.atomic_write import WriteError


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)
    real_fsync = os.fsync

    def full_disk(fd):
        real_fsync(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(WriteError) as caught:
        io.save_checkpoint({"step": 2, "weights": torch.zeros(1000)}, path)
    assert re.fullmatch(
        rf"no space left on \S+ to save {path} \(\d+ kB needed, [\d.]+ [kM]B free\); "
        "the previous last.ckpt is kept",
        str(caught.value),
    ), str(caught.value)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # the temporary file is gone

    def broken_disk(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_disk)
    with pytest.raises(WriteError, match=rf"^cannot write {path}: Input/output error; the previous last.ckpt is kept$"):
        io.save_checkpoint({"step": 3}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_truncated_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"weights": torch.zeros(10_000)}, path)
    path.write_bytes(path.read_bytes()[:20_000])
    with pytest.raises(CheckpointReadError, match="last.ckpt: not a readable checkpoint, truncated or damaged"):
        AtomicCheckpointIO().load_checkpoint(path)


def test_every_run_saves_through_it(tmp_path, small_data):
    try:
        cli = FitCLI(args=["--config", str(TINY), "--trainer.default_root_dir", str(tmp_path / "runs"),
                           "--data.data_dir", str(small_data)])  # fmt: skip
    finally:
        os.environ.pop(RUN_DIR_ENV, None)  # the CLI hands its run folder to DDP workers through it
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_full_disk_keeps_last_ckpt_and_resume_works_once_there_is_room(train_tiny, tmp_path, tmpfs):
    disk = tmpfs("disk", size="2m")
    root = disk / "runs"
    train_tiny("--trainer.default_root_dir", str(root), "--trainer.max_steps=2")
    last = root / "version_0" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(disk).free - len(before) // 2))  # half a checkpoint left

    result = train_tiny(
        "--trainer.default_root_dir", str(root), "--trainer.max_steps=4", "--ckpt_path=last", check=False
    )
    message = assert_error(result, f"no space left on {disk} to save {last}", "; the previous last.ckpt is kept")
    assert message.count("error:") == 1
    assert last.read_bytes() == before and torch.load(last, weights_only=True)["global_step"] == 2
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.ckpt", "last.ckpt"]  # no temporary file left

    filler.unlink()
    train_tiny("--trainer.default_root_dir", str(root), "--trainer.max_steps=4", "--ckpt_path=last")
    assert torch.load(last, weights_only=True)["global_step"] == 4

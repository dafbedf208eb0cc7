"""Run folders from the command line (issue 35): whose config is read, folders that cannot be written,
failed starts, resumes on other data, and the design card's smoke run."""

import shutil
from pathlib import Path

import pytest
import torch

from entry_points import assert_error
from entry_points import run as run_entry_point


def test_a_checkpoint_from_elsewhere_never_pulls_in_its_config(trained, lm_ckpt, small_data, tmp_path):
    """The run beside a checkpoint of someone's folder is not read unless asked (--config): a YAML can
    name any code. Runs under runs/ (or --trainer.default_root_dir) are the user's own and still are."""
    run = lm_ckpt.parent.parent
    output = tmp_path / "submission.txt"
    data = ("--data.data_dir", str(small_data), "--output", str(output))
    refused = run_entry_point("predict.py", "--ckpt_path", str(lm_ckpt), *data, check=False)
    asked_for = f"pass --config {run / 'config.yaml'} if you trust it"
    assert_error(refused, f"--ckpt_path {lm_ckpt}: its run is not under runs/", asked_for)
    assert not output.exists()
    run_entry_point("predict.py", "--ckpt_path", str(lm_ckpt), "--config", str(run / "config.yaml"), *data)
    asked = output.read_bytes()
    output.unlink()
    run_entry_point("predict.py", "--ckpt_path", str(lm_ckpt), "--trainer.default_root_dir", str(trained), *data)
    assert output.read_bytes() == asked

    # python predict.py with nothing else: the newest run of one's own runs/, from where one works
    home = tmp_path / "home"
    shutil.copytree(run, home / "runs" / "tiny" / "version_0")
    bare = run_entry_point("predict.py", "--data.data_dir", str(small_data), cwd=home)
    assert "using the newest run, runs/tiny/version_0" in bare.stdout
    assert (home / "submission.txt").read_bytes() == asked


def test_a_runs_folder_that_cannot_be_written_is_one_line(train_tiny, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    result = train_tiny("--trainer.default_root_dir", str(blocker / "runs"), check=False)
    assert_error(result, f"cannot create a run folder under {blocker / 'runs'} (trainer.default_root_dir)")


def test_a_wandb_folder_that_cannot_be_written_is_one_line(train_tiny, tmp_path):
    train_tiny("--trainer.max_steps=1", wandb_mode="offline")
    run = tmp_path / "runs" / "version_0"
    shutil.rmtree(run / "wandb")
    (run / "wandb").write_text("in the way\n")
    last = (run / "checkpoints" / "last.ckpt").read_bytes()
    result = train_tiny("--trainer.max_steps=2", "--ckpt_path=last", wandb_mode="offline", check=False)
    assert_error(result, f"cannot write the run's files: {run / 'wandb'} is a file, not a folder")
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == last


def test_a_failed_start_leaves_no_run_folder(train_tiny, tmp_path, small_data):
    """W&B writes its files before the data is read: a start that fails on the data leaves no
    version_N/ holding only wandb/, so the next run is not numbered past an empty one."""
    broken = Path(shutil.copytree(small_data, tmp_path / "broken"))
    lines = (broken / "train.txt").read_text().splitlines()
    (broken / "train.txt").write_text("\n".join([*lines[:2], "1 2 3", *lines[3:]]) + "\n")
    result = train_tiny("--data.data_dir", str(broken), wandb_mode="offline", check=False)
    assert_error(result, "train.txt:3: expected 400 ints, got 3")
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_resume_on_another_palette_is_refused(train_tiny, tmp_path, small_data):
    train_tiny("--trainer.max_steps=2")
    last = tmp_path / "runs" / "version_0" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    recoloured = Path(shutil.copytree(small_data, tmp_path / "recoloured"))
    colours = (recoloured / "colormap.txt").read_text().splitlines()
    colours[5] = "1 2 3"
    (recoloured / "colormap.txt").write_text("\n".join(colours) + "\n")
    result = train_tiny("--trainer.max_steps=4", "--ckpt_path=last", "--data.data_dir", str(recoloured), check=False)
    assert_error(result, f"{last}: trained with another palette", "colour 5 is", "[1, 2, 3] in", "colormap.txt")
    assert last.read_bytes() == before
    train_tiny("--trainer.max_steps=4", "--ckpt_path=last")  # on its own data it resumes
    assert torch.load(last, weights_only=True)["global_step"] == 4


@pytest.mark.slow  # the default model, then its reranker
def test_the_cards_smoke_run_ends_cleanly_with_its_checkpoints(tmp_path, small_data):
    """python train.py --config llama.yaml --trainer.max_steps=3 --trainer.check_val_every_n_epoch=1
    --trainer.limit_val_batches=1 ends before any validation: EarlyStopping, which checks after
    validations only, has nothing to say, instead of failing on a metric not logged yet."""
    runs = tmp_path / "runs"
    result = run_entry_point(
        "train.py", "--config", "llama.yaml", "--trainer.max_steps=3", "--trainer.check_val_every_n_epoch=1",
        "--trainer.limit_val_batches=1", "--trainer.default_root_dir", str(runs), "--data.data_dir", str(small_data),
        "--data.batch_size=8",  # 6 steps an epoch on the small data: the run ends inside the first one
        check=False,
    )  # fmt: skip
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert torch.load(runs / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    assert (runs / "version_0" / "reranker" / "version_0" / "checkpoints" / "best.ckpt").is_file()

"""The README's commands in a fresh copy of the project with nothing beside it: no ../shared, no network.

Real processes in the copy, with a bare environment: what is tested is that the copy alone suffices.
"""

import subprocess
import sys

import pytest

from datamodules.pixel_files import read_images
from entry_points import copy_tracked_files

# The default config made quick: 2 batches a epoch, validation (and with it best.ckpt) after epoch 2; its
# reranker (the last callback, TrainReranker) as quick: one epoch of 2 batches, validated.
RERANKER = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.check_val_every_n_epoch=1"]
QUICK = ("--trainer.max_epochs=2", "--trainer.limit_train_batches=2", f"--trainer.callbacks.args={RERANKER}")


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """The tracked files of the checkout, copied into an empty folder (what `git clone` gives)."""
    folder = copy_tracked_files(tmp_path_factory.mktemp("fresh") / "project")
    assert not (folder.parent / "shared").exists()
    return folder


def run_in(clone, *args, check=True):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(clone), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    result = subprocess.run([sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


@pytest.mark.slow
def test_train_by_bare_name_then_bare_predict_writes_the_course_submission(clone):
    run_in(clone, "train.py", "--config", "llama.yaml", *QUICK)
    best = clone / "runs" / "llama" / "version_0" / "checkpoints" / "best.ckpt"
    assert best.is_file()
    reranker = clone / "runs" / "llama" / "version_0" / "reranker" / "version_0" / "checkpoints" / "best.ckpt"
    assert reranker.is_file()  # trained by the same command
    result = run_in(clone, "predict.py")
    assert "using the newest run, runs/llama/version_0" in result.stdout
    assert "Reranking with runs/llama/version_0/reranker/version_0/checkpoints/best.ckpt" in result.stdout
    submission = read_images(clone / "submission.txt", 400, 167)
    test = read_images(clone / "data" / "pokemon" / "test.txt", 240, 167)  # the shipped .gz
    assert submission.shape == (80, 400) and (submission[:, :240] == test).all()
    checked = run_in(clone, "-m", "datamodules.submission", "check", "submission.txt")
    assert checked.stdout.startswith("OK: submission.txt: 80 images of 400 pixels")
    run_in(clone, "train.py", "--config", "configs/llama.yaml", *QUICK)  # the path form works as well
    assert (clone / "runs" / "llama" / "version_1" / "checkpoints" / "best.ckpt").is_file()


def test_bare_predict_before_any_training_says_what_to_do(clone):
    result = run_in(clone, "predict.py", "--trainer.default_root_dir", "nowhere", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: no --config given and no trained run under nowhere/: train one first "
        "(python train.py --config configs/llama.yaml) or pass --config"
    )

"""Same config and seed on CPU: the same final validation loss and bit-identical weights, in any process."""

import pytest
import torch

from run_logs import history, metric


@pytest.mark.slow
def test_two_runs_with_one_seed_are_identical(train_tiny, tmp_path):
    args = ("--trainer.max_steps=-1", "--trainer.max_epochs=2", "--data.hflip=true")  # dropout 0.1 and flips draw
    train_tiny(*args, wandb_mode="offline")
    train_tiny(*args, wandb_mode="offline", fresh_process=True)  # as a user's second run, and the tests' in-process one
    runs = [tmp_path / "runs" / f"version_{n}" for n in range(2)]
    losses = [metric(history(run), "val/loss") for run in runs]
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    first, second = (torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"] for run in runs)
    assert all(torch.equal(first[key], second[key]) for key in first)

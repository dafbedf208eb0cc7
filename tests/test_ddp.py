"""Training and prediction on two devices (DDP over two CPU processes) through train.py and predict.py.

DDP starts its second rank by running the command line again, so the DDP runs are train.py and
predict.py processes of their own.
"""

import pytest
import torch

from conftest import predict

DDP = ("--trainer.strategy=ddp", "--trainer.accelerator=cpu", "--trainer.devices=2")


@pytest.mark.slow  # four runs, two of them launching two worker processes
def test_ddp_trains_one_run_and_predicts_the_same_submission(train_tiny, tmp_path, small_data):
    result = train_tiny(*DDP, "--trainer.max_steps=3", fresh_process=True)
    assert "MEMBER: 2/2" in result.stdout + result.stderr  # the second process did join
    runs = tmp_path / "runs"
    assert [p.name for p in runs.iterdir()] == ["version_0"]  # both ranks wrote into one run folder
    checkpoint = torch.load(runs / "version_0/checkpoints/last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 3

    single, ddp = tmp_path / "single.txt", tmp_path / "ddp.txt"
    predict(runs, small_data, single)
    predict(runs, small_data, ddp, *DDP, fresh_process=True)
    assert len(single.read_text().splitlines()) == 16  # every test prefix of the small data, once
    assert ddp.read_text().splitlines() == single.read_text().splitlines()  # greedy, however the prefixes were split

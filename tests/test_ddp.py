"""Training and prediction on two devices (DDP over two CPU processes) through train.py and predict.py."""

import pytest
import torch

from conftest import TINY, run_script

DDP = ("--trainer.strategy=ddp", "--trainer.accelerator=cpu", "--trainer.devices=2")


@pytest.mark.slow  # four runs, two of them launching two worker processes
def test_ddp_trains_one_run_and_predicts_the_same_submission(train_tiny, tmp_path, small_data):
    result = train_tiny(*DDP, "--trainer.max_steps=3")
    assert "MEMBER: 2/2" in result.stdout + result.stderr  # the second process did join
    runs = tmp_path / "runs"
    assert [p.name for p in runs.iterdir()] == ["version_0"]  # both ranks wrote into one run folder
    checkpoint = torch.load(runs / "version_0/checkpoints/last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 3

    def predict(output, *args):
        run_script(
            "predict.py", "--config", str(TINY), "--trainer.default_root_dir", str(runs),
            "--data.data_dir", str(small_data), "--output", str(output), *args,
        )  # fmt: skip
        return output.read_text().splitlines()

    single = predict(tmp_path / "single.txt")
    ddp = predict(tmp_path / "ddp.txt", *DDP)
    assert len(single) == 16  # every test prefix of the small data, once
    assert ddp == single  # greedy: same images in the same order, however the prefixes were split

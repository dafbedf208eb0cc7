"""A normal train, resume and predict run prints no false alarm; a warning about the user's input still shows."""

import logging
import os
import re
import shutil
import warnings

import pytest
import torch
from lightning.pytorch.utilities.model_summary import ModelSummary

from checkpointing.io import AtomicCheckpointIO
from checkpointing.run_folders import RUN_DIR_ENV
from conftest import TINY
from lightning_modules import PixelLM, PokemonClassifier
from tiny_models import ARCHITECTURES

# What every run printed at 6765bde, none of it about the user's input (issue 34).
FALSE_ALARMS = (
    r"may run out of memory",  # WeightAveraging, with a model that overrides configure_model
    r"LeafSpec",  # torch's deprecation, raised inside Lightning
    r"loading a checkpoint outside the 'fit' stage",  # WeightAveraging, at every prediction
    r"Please add the following callbacks",  # Lightning, were the averaging callback dropped for prediction
    r"dirpath has changed",  # ModelCheckpoint, for a moved run folder
    r"exists and is not empty",  # ModelCheckpoint, for the folder a resumed run continues in
    r"litlogger",  # Lightning's advertisement
    r"anonymous setting has no effect",  # W&B, for Lightning's anonymous=None
)


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_model_summaries_count_flops_where_torch_can():
    # Both give the summary an example input, so it counts FLOPs instead of printing "Total FLOPs: 0"; PixelLM
    # not on a GPU, where FlopCounterMode asserts on grouped-query SDPA (lightning_modules/pixel_lm.py).
    assert ModelSummary(PokemonClassifier()).total_flops > 0
    model = PixelLM("llama", ARCHITECTURES["llama"])  # grouped-query attention, as the shipped configs
    assert ModelSummary(model).total_flops > 0
    model._device = torch.device("cuda", 0)  # where the model would be on a GPU run (no GPU needed to ask)
    assert model.example_input_array is None


def test_train_resume_and_predict_print_no_false_alarm(tmp_path, small_data, monkeypatch, capfd):
    import wandb

    import predict
    import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv(RUN_DIR_ENV, "unset")  # recorded as absent: the in-process run's value is removed after
    monkeypatch.delenv(RUN_DIR_ENV)
    logs = Recorded()
    lightning_logger = logging.getLogger("lightning.pytorch")  # where Lightning's info lines (and its tip) go
    lightning_logger.addHandler(logs)
    common = ["--config", str(TINY), "--data.data_dir", str(small_data), "--trainer.max_steps=-1"]
    first = [*common, "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.max_epochs=2"]
    first += ["--trainer.enable_model_summary=true", "--trainer.log_every_n_steps=50"]  # more steps than an epoch has
    moved = tmp_path / "moved" / "version_0"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # every warning, each time: only the project's own filters may hide one
            train.main(first)
            wandb.finish()
            os.environ.pop(RUN_DIR_ENV, None)  # else the next run in this process takes itself for a DDP worker
            shutil.move(tmp_path / "runs" / "version_0", moved)  # the user moves the run, then resumes it
            before = AtomicCheckpointIO().load_checkpoint(moved / "checkpoints" / "last.ckpt")
            train.main([*common, "--ckpt_path", str(moved / "checkpoints" / "last.ckpt"), "--trainer.max_epochs=3"])
            wandb.finish()
            output = tmp_path / "submission.txt"
            best, config = (
                moved / "checkpoints" / "best.ckpt",
                moved / "config.yaml",
            )  # a moved run: its config asked for
            predict.main(["--config", str(config), "--ckpt_path", str(best), "--output", str(output)])
    finally:
        lightning_logger.removeHandler(logs)
    out, err = capfd.readouterr()
    shown = [str(warning.message) for warning in caught] + logs.messages + [out, err]
    for alarm in FALSE_ALARMS:
        assert not [text for text in shown if re.search(alarm, text, re.MULTILINE)], alarm
    assert any("smaller than the logging interval" in str(warning.message) for warning in caught)  # the user's own
    assert any("Restoring states from the checkpoint" in message for message in logs.messages)  # logs were recorded
    flops = re.search(r"Total FLOPs\W*:\s*([\d.]+)|([\d.]+)\s*\w?\s+Total Flops", out)  # rich's summary, or plain
    assert flops and float(flops.group(1) or flops.group(2)) > 0  # the summary counted the model's FLOPs
    assert output.is_file() and "Drawing" not in err  # no progress bar in tests
    # The moved run kept its checkpoint bookkeeping: best.ckpt is replaced only by a better model.
    (state,) = [s for key, s in before["callbacks"].items() if "train/loss_epoch" in key]
    assert state["dirpath"] == str(moved / "checkpoints") and state["best_model_score"] is not None
    assert state["best_model_path"] == str(moved / "checkpoints" / "best.ckpt")


@pytest.mark.parametrize("moved_to", ["runs/elsewhere/checkpoints", "runs/x/not_checkpoints"])
def test_moved_run_follows_only_a_folder_of_the_same_name(tmp_path, moved_to):
    from checkpointing.moved_run import follow_moved_run

    old = "/old/runs/version_0/checkpoints"
    state = {"dirpath": old, "best_model_path": f"{old}/best.ckpt", "best_model_score": torch.tensor(1.5),
             "last_model_path": f"{old}/last.ckpt", "kth_best_model_path": f"{old}/best.ckpt",
             "best_k_models": {f"{old}/best.ckpt": torch.tensor(1.5)}}  # fmt: skip
    checkpoint = follow_moved_run({"callbacks": {"ModelCheckpoint{}": dict(state)}}, tmp_path / moved_to / "last.ckpt")
    after = checkpoint["callbacks"]["ModelCheckpoint{}"]
    new = str((tmp_path / moved_to).resolve())
    if moved_to.endswith("/checkpoints"):
        assert after["dirpath"] == new and after["best_model_path"] == f"{new}/best.ckpt"
        assert list(after["best_k_models"]) == [f"{new}/best.ckpt"] and after["last_model_path"] == f"{new}/last.ckpt"
    else:  # not a run's checkpoints folder: Lightning's own warning stays, and is true
        assert after == state

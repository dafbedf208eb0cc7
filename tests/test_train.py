"""Training through train.py: configs, architectures, checkpoints, resuming, W&B."""

import re

import pytest
import torch
import torch.nn.functional as F
import yaml

from conftest import DATA_DIR, train
from entry_points import ROOT, run
from run_logs import history, logged_config, metric
from tiny_models import ARCHITECTURES, as_option

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_validates(config):
    result = run("train.py", "--config", str(config), "--print_config")
    printed = yaml.safe_load(result.stdout)
    assert printed["model"]["class_path"].startswith("lightning_modules.")
    assert printed["data"]["data_dir"] is None  # the course's split shipped in data/pokemon


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_each_architecture_trains_and_checkpoints(train_tiny, tmp_path, model_type):
    train_tiny(
        f"--model.init_args.model_type={model_type}",
        f"--model.init_args.model_config={as_option(ARCHITECTURES[model_type])}",
        "--trainer.max_steps=2",
    )
    run_dir = tmp_path / "runs" / "version_0"
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 2
    assert checkpoint["hyper_parameters"]["model_type"] == model_type
    assert checkpoint["state_dict"]["model.lm_head.weight"].shape[0] == 167  # vocabulary from the palette
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.slow  # three epochs of the real data, each validation completing the 80 dev images
def test_real_data_loss_falls_and_run_folder_is_complete(tmp_path):
    result = train(
        tmp_path / "runs", DATA_DIR, "--trainer.max_steps=-1", "--trainer.max_epochs=3", wandb_mode="offline"
    )
    run_dir = tmp_path / "runs" / "version_0"
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] == 3 and saved["data"]["data_dir"] == str(DATA_DIR)
    rows = history(run_dir)
    losses = metric(rows, "train/loss_epoch")
    assert len(losses) == 3, result.stdout[-2000:]
    assert losses[-1] < losses[0] - 0.3  # 3 epochs take the loss well down from ln(167) = 5.1
    assert len(metric(rows, "val/bits_per_pixel")) == 3 and 0 <= metric(rows, "val/recon_acc")[-1] <= 1
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=False)
    assert checkpoint["epoch"] == 2  # the loss fell every epoch, so the last epoch is the best


def test_run_folder_and_wandb_offline_run_hold_the_run(trained, small_data):
    """The session's tiny run (3 steps, W&B offline): checkpoints, the resolved config, W&B's metrics and config."""
    run_dir = trained / "version_0"
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 3 and saved["data"]["data_dir"] == str(small_data)
    assert saved["trainer"]["default_root_dir"] == str(run_dir)
    rows = history(run_dir)
    assert len(metric(rows, "train/loss_step")) == 3
    assert max(metric(rows, "lr-AdamW")) > 0
    assert logged_config(run_dir)["model_type"] == "gpt2"  # hyperparameters are logged too


def test_resume_continues_from_saved_step_and_same_run(train_tiny, tmp_path):
    train_tiny("--trainer.max_steps=3", wandb_mode="offline")
    train_tiny("--trainer.max_steps=6", "--ckpt_path=last", wandb_mode="offline")
    runs = sorted((tmp_path / "runs").iterdir())
    assert [r.name for r in runs] == ["version_0"]  # resumed in place, no new run folder
    checkpoint = torch.load(runs[0] / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 6
    # offline-run-<date>_<time>-<id>, and "-1" after it when both starts fall in one second
    ids = {re.match(r"offline-run-\d{8}_\d{6}-([^-]+)", p.name)[1] for p in runs[0].glob("wandb/offline-run-*")}
    assert len(ids) == 1  # the same W&B run continued


def test_a_run_id_that_reads_as_a_number_survives_the_resumed_config(train_tiny, tmp_path):
    # A resume writes the W&B run id into config.yaml; 641818e8 (1 in 70 of the ids) is a float to the YAML loader.
    train_tiny("--trainer.max_steps=2", wandb_mode="offline", env={"WANDB_RUN_ID": "641818e8"})
    train_tiny("--trainer.max_steps=3", "--ckpt_path=last", wandb_mode="offline")
    run_dir = tmp_path / "runs" / "version_0"
    assert "id: '641818e8'" in (run_dir / "config.yaml").read_text()
    output = tmp_path / "submission.txt"
    best = run_dir / "checkpoints" / "best.ckpt"
    run("predict.py", "--config", str(run_dir / "config.yaml"), "--ckpt_path", str(best), "--output", str(output))
    assert len(output.read_text().splitlines()) == 16  # the small data's test prefixes, completed


def test_wandb_without_login_logs_offline(train_tiny, tmp_path):
    # A new user: no WANDB_MODE, no API key, no netrc. The run must not stop at W&B's login; it logs offline.
    home = tmp_path / "home"
    home.mkdir()
    result = train_tiny("--trainer.max_steps=2", wandb_mode=None, env={"HOME": str(home), "WANDB_API_KEY": ""})
    assert "not logged in, logging offline" in result.stdout
    assert len(metric(history(tmp_path / "runs" / "version_0"), "train/loss_step")) == 2


def test_input_noise_replaces_inputs_not_targets():
    from lightning_modules import PixelLM

    model = PixelLM("gpt2", ARCHITECTURES["gpt2"], input_noise=0.3)
    images = torch.randint(0, 167, (64, 400))
    seen = []
    # A "model" that puts all its mass on the true next pixel: the loss is ~0 only if the targets are the true pixels.
    model.forward = lambda tokens: (seen.append(tokens), 50.0 * F.one_hot(images[:, 1:], 167).float())[1]
    torch.manual_seed(0)
    loss = model.training_step(images, 0)
    replaced = (seen[0] != images[:, :-1]).float().mean().item()
    assert 0.27 < replaced < 0.33  # 30 % drawn, of which 1/167 keep their colour by chance
    assert loss.item() < 1e-6
    model.token_losses(images)  # evaluation (validation, best-of-N) sees the real inputs
    assert torch.equal(seen[-1], images[:, :-1])

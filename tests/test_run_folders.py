"""Run folders: one per run, even when runs start together."""

import os
import subprocess
import sys

import torch
import yaml

from conftest import ROOT, TINY


def test_runs_started_together_get_a_folder_each(tmp_path, small_data):
    root = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    env.pop("POKEMON_RUN_DIR", None)
    runs = [
        subprocess.Popen(
            [sys.executable, "train.py", "--config", str(TINY), "--trainer.default_root_dir", str(root),
             "--data.data_dir", str(small_data), "--trainer.max_steps=2", f"--seed_everything={seed}"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for seed in (0, 1)
    ]
    for run in runs:
        output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, output[-3000:]
    assert sorted(p.name for p in root.iterdir()) == ["version_0", "version_1"]
    seeds = set()
    for folder in root.iterdir():
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["trainer"]["default_root_dir"] == str(folder)  # each run's record is its own
        seeds.add(config["seed_everything"])
        assert {p.name for p in (folder / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
        assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert seeds == {0, 1}

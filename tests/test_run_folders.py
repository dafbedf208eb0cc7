"""Run folders: one per run even when runs start together, and a refused resume leaves its folder alone."""

import os
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import TINY, train
from entry_points import ROOT, RUN_DIR_ENV, assert_error
from tiny_models import as_option, tiny_config


def contents(folder) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow  # two train.py processes at once: the race is between processes
def test_runs_started_together_get_a_folder_each(tmp_path, small_data):
    root = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    env.pop(RUN_DIR_ENV, None)
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "train.py",
                "--config",
                str(TINY),
                "--trainer.default_root_dir",
                str(root),
                "--data.data_dir",
                str(small_data),
                "--trainer.max_steps=2",
                f"--seed_everything={seed}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for seed in (0, 1)
    ]
    for process in runs:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-3000:]
    assert sorted(p.name for p in root.iterdir()) == ["version_0", "version_1"]
    seeds = set()
    for folder in root.iterdir():
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert config["trainer"]["default_root_dir"] == str(folder)  # each run's record is its own
        seeds.add(config["seed_everything"])
        assert {p.name for p in (folder / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
        assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert seeds == {0, 1}


def test_a_second_run_gets_a_new_folder_and_a_refused_resume_leaves_the_first_as_it_was(train_tiny, tmp_path):
    train_tiny("--trainer.max_steps=1")
    run_dir = tmp_path / "runs" / "version_0"
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    before = contents(run_dir)
    llama = as_option(tiny_config("llama"))
    result = train_tiny("--model.init_args.model_type=llama", f"--model.init_args.model_config={llama}",
                        f"--ckpt_path={checkpoint}", check=False)  # fmt: skip
    assert_error(
        result,
        f"{checkpoint}: checkpoint is a gpt2 model (n_layer 1, n_head 2, n_embd 16) with vocab 167",
        "the config asks for a llama model (num_hidden_layers 1",
    )
    assert contents(run_dir) == before  # config.yaml, checkpoints: same bytes, no new file
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["version_0"]
    train_tiny("--trainer.max_steps=1")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["version_0", "version_1"]


def test_truncated_last_ckpt_is_one_line_and_changes_nothing(train_tiny, tmp_path):
    train_tiny("--trainer.max_steps=1")
    run_dir = tmp_path / "runs" / "version_0"
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # as a copy cut short by a full disk
    before = contents(run_dir)
    result = train_tiny("--ckpt_path=last", check=False)
    assert_error(result, f"{last}: is truncated (it ends before the checkpoint does)")  # the weights-only loader, first
    assert contents(run_dir) == before


def test_failed_start_leaves_no_empty_run_folder(tmp_path, small_data):
    """The claimed folder is removed as the process exits, so this runs the real train.py in its own process
    (which is also where its exit status and one-line error are checked as a user sees them)."""
    result = train(tmp_path / "runs", small_data, "--model.init_args.lr=-1", check=False, fresh_process=True)
    assert assert_error(result) == "error: model.lr: must be greater than 0, got -1.0"
    assert not list((tmp_path / "runs").glob("version_*"))

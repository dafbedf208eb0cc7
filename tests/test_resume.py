"""A run killed mid-epoch and resumed with --ckpt_path last ends exactly as an uninterrupted one.

The killed runs are real train.py processes (a signal or kill -9 is what is tested); the uninterrupted
and the resumed runs run in the test process, with the same single thread (conftest), so their floats
round the same way.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY, train
from entry_points import ROOT, RUN_DIR_ENV
from generation.decoding import Decoding
from lightning_modules import PixelLM

# 48 images in batches of 2: 24 steps an epoch; tiny.yaml saves last.ckpt every 2 steps, so mid-epoch.
RUN = ("--data.batch_size=2", "--trainer.max_steps=-1", "--trainer.max_epochs=2")


def last(root: Path) -> Path:
    return root / "version_0" / "checkpoints" / "last.ckpt"


def state(path: Path) -> dict:
    return torch.load(path, weights_only=False, map_location="cpu")


def completions(path: Path, data: Path) -> torch.Tensor:
    """Greedy completions of the first four dev prefixes."""
    model = PixelLM.load_from_checkpoint(path, map_location="cpu")
    dev = torch.tensor([[int(v) for v in line.split()] for line in (data / "dev.txt").read_text().splitlines()[:4]])
    return model.complete(dev[:, :240], Decoding())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, small_data) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted") / "runs"
    train(root, small_data, *RUN)
    return last(root)


def start_and_stop(root: Path, data: Path, signum: int, *extra: str) -> subprocess.CompletedProcess:
    """Starts train.py in its own process (``extra``: more arguments), sends ``signum`` once a mid-epoch
    last.ckpt exists, and waits for the end."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    env.pop(RUN_DIR_ENV, None)
    args = ["--config", str(TINY), "--trainer.default_root_dir", str(root), "--data.data_dir", str(data), *RUN, *extra]
    process = subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not last(root).is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_same_run(resumed: Path, uninterrupted: Path, data: Path) -> None:
    ours, theirs = state(resumed), state(uninterrupted)
    assert ours["global_step"] == theirs["global_step"] == 48
    # state_dict holds the EMA weights (what predict.py uses), current_model_state the trained ones
    for weights in ("state_dict", "current_model_state"):
        assert ours[weights].keys() == theirs[weights].keys()
        for key, value in theirs[weights].items():
            assert torch.equal(ours[weights][key], value), f"{weights}: {key}"
    assert torch.equal(completions(resumed, data), completions(uninterrupted, data))


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, small_data, uninterrupted):
    root = tmp_path / "runs"
    killed = start_and_stop(root, small_data, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    step = state(last(root))["global_step"]
    assert 0 < step < 48 and step % 24  # a periodic save from inside an epoch
    train(root, small_data, *RUN, "--ckpt_path=last")
    assert sorted(p.name for p in root.iterdir()) == ["version_0"]  # continued in place
    assert_same_run(last(root), uninterrupted, small_data)


@pytest.mark.slow
def test_sigterm_saves_and_resume_matches_uninterrupted_run(tmp_path, small_data, uninterrupted):
    root = tmp_path / "runs"
    stopped = start_and_stop(root, small_data, signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    assert stopped.stderr.strip().splitlines()[-1] == "error: stopped by SIGTERM"
    assert "Traceback" not in stopped.stderr
    step = state(last(root))["global_step"]
    assert f"Stopped at step {step} (SIGTERMException); saved {last(root)}" in stopped.stderr
    train(root, small_data, *RUN, "--ckpt_path=last")
    assert_same_run(last(root), uninterrupted, small_data)


@pytest.mark.slow
def test_muon_run_killed_and_resumed_matches_uninterrupted_run(tmp_path, small_data):
    """Muon's momentum buffers and AdamW's moments both come back from last.ckpt."""
    muon = "--model.init_args.optimizer=muon"
    reference = tmp_path / "uninterrupted"
    train(reference, small_data, *RUN, muon)
    root = tmp_path / "runs"
    assert start_and_stop(root, small_data, signal.SIGKILL, muon).returncode == -signal.SIGKILL
    assert 0 < state(last(root))["global_step"] < 48
    train(root, small_data, *RUN, muon, "--ckpt_path=last")
    assert_same_run(last(root), last(reference), small_data)


def test_ckpt_path_last_in_yaml_starts_fresh_then_resumes(tmp_path, small_data):
    config = tmp_path / "resume.yaml"
    config.write_text("ckpt_path: last  # resume when there is a last.ckpt, else start\n")
    runs = tmp_path / "runs"
    first = train(runs, small_data, "--config", str(config), "--trainer.max_steps=2")
    assert "No last.ckpt" in first.stdout
    train(runs, small_data, "--config", str(config), "--trainer.max_steps=4")
    assert [p.name for p in runs.iterdir()] == ["version_0"]
    assert state(last(runs))["global_step"] == 4

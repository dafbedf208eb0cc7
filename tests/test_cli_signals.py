"""SIGTERM while the reranker trains (callbacks.TrainReranker runs train.py after the fit): both
processes stop, with one line, and the language model's run is kept (issue 35)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from checkpointing.run_folders import RUN_DIR_ENV
from conftest import ROOT, TINY


def processes_mentioning(text: str) -> list[int]:
    """Ids of the running processes whose command line holds ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.mark.slow  # a model, then a classifier long enough to be stopped
def test_sigterm_while_the_reranker_trains_stops_both_with_one_line(tmp_path, small_data):
    config = yaml.safe_load(TINY.read_text())
    long_classifier = ["--trainer.max_epochs=10000", "--trainer.max_time=null", "--trainer.logger=false"]
    reranker = {"class_path": "callbacks.TrainReranker", "init_args": {"args": long_classifier}}
    config["trainer"]["callbacks"].append(reranker)
    (tmp_path / "reranked.yaml").write_text(yaml.safe_dump(config))
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    env.pop(RUN_DIR_ENV, None)
    command = [sys.executable, "train.py", "--config", str(tmp_path / "reranked.yaml"), "--trainer.max_steps=2",
               "--trainer.default_root_dir", str(runs), "--data.data_dir", str(small_data)]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:  # the reranker prints its epochs once it trains
            lines.append(line)
            if "Training the reranker" in "".join(lines) and "Epoch" in line:
                break
        time.sleep(1)
        assert process.poll() is None, "train.py ended before it could be stopped:\n" + "".join(lines)[-3000:]
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=300)
        assert process.returncode == 143, rest[-3000:]
        errors = [line for line in rest.splitlines() if line.startswith("error: ")]
        assert errors == ["error: stopped by SIGTERM"] and "Traceback" not in rest, rest[-3000:]
        time.sleep(1)
        assert processes_mentioning(str(runs / "version_0" / "reranker")) == []  # no orphan trains on
        assert (runs / "version_0" / "checkpoints" / "best.ckpt").is_file()  # the model's run is kept
    finally:
        for pid in [process.pid, *processes_mentioning(str(runs))]:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

"""SIGTERM and Ctrl-C stop predict.py at once: status 143 / 130, one line, earlier outputs byte for byte.

A real predict.py process each: the signal and the exit status are what is tested.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import TINY
from entry_points import ROOT, RUN_DIR_ENV

# Slow decoding, one prefix a batch: prediction takes many seconds, so the signal arrives mid-way.
SLOW = ("--model.init_args.decoding.best_of=128", "--data.eval_batch_size=1")


@pytest.mark.parametrize(("signum", "status", "message"), [
    (signal.SIGTERM, 143, "error: stopped by SIGTERM"),
    (signal.SIGINT, 130, "error: interrupted"),
], ids=["sigterm", "ctrl-c"])  # fmt: skip
def test_signal_stops_prediction_and_keeps_earlier_outputs(trained, small_data, tmp_path, signum, status, message):
    output, picture = tmp_path / "submission.txt", tmp_path / "submission.png"
    output.write_bytes(b"earlier submission\n")
    picture.write_bytes(b"earlier picture")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    env.pop(RUN_DIR_ENV, None)
    process = subprocess.Popen(
        [sys.executable, "predict.py", "--config", str(TINY), "--trainer.default_root_dir", str(trained),
         "--data.data_dir", str(small_data), "--output", str(output), *SLOW],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines = []
    for line in process.stdout:  # Lightning says this just before the first batch
        lines.append(line)
        if "Loaded model weights" in line:
            break
    time.sleep(1)
    assert process.poll() is None, "predict.py ended before it could be stopped:\n" + "".join(lines)[-3000:]
    process.send_signal(signum)
    rest, _ = process.communicate(timeout=300)
    assert process.returncode == status, rest[-3000:]
    assert rest.strip().splitlines()[-1] == message
    assert "Traceback" not in rest and "Wrote" not in rest
    assert output.read_bytes() == b"earlier submission\n" and picture.read_bytes() == b"earlier picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.png", "submission.txt"]  # no temporary file

"""The entry points' one error policy (cli/errors.py), as a test calls them in-process: main([...]) exits
as the command does, with one "error: ..." line and status 2, 143 after SIGTERM, 130 after Ctrl-C."""

import os
import signal

import pytest

import evaluate
import export
import predict
import train
from cli.errors import reported_errors
from conftest import TINY
from entry_points import exits_with_one_line


def test_every_entry_point_reports_a_users_error_in_one_line(capsys, tmp_path, small_data):
    runs = tmp_path / "runs"
    common = ["--config", str(TINY), "--trainer.default_root_dir", str(runs), "--data.data_dir", str(small_data)]
    message = exits_with_one_line(capsys, train.main, [*common, "--data.batchsize=3"])
    assert "--data.batchsize=3" in message and message.endswith("(--help lists the options)")
    message = exits_with_one_line(capsys, train.main, [*common, "--model.init_args.input_noise=1.5"])
    assert message == "error: model.input_noise: must be in [0, 1), got 1.5"
    assert list(runs.iterdir()) == []  # the run folder it had claimed is gone again
    missing = str(tmp_path / "missing.ckpt")
    assert f"{missing} does not exist" in exits_with_one_line(capsys, predict.main, [*common, "--ckpt_path", missing])
    export_args = [*common, "--ckpt_path", missing, "--out", str(tmp_path / "out")]
    assert f"{missing} does not exist" in exits_with_one_line(capsys, export.main, export_args)
    images = ["--images", str(tmp_path / "none.txt"), "--reference", str(small_data / "dev.txt")]
    assert "none.txt" in exits_with_one_line(capsys, evaluate.main, [*images, "--data_dir", str(small_data)])


def test_a_bug_keeps_its_traceback():
    @reported_errors()
    def buggy() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        buggy()


@pytest.mark.parametrize(("signum", "status", "line"), [
    (signal.SIGTERM, 143, "error: stopped by SIGTERM"),
    (signal.SIGINT, 130, "error: interrupted"),
])  # fmt: skip
def test_sigterm_and_ctrl_c_stop_with_their_status(capsys, signum, status, line):
    before = signal.getsignal(signum)

    @reported_errors()
    def waiting() -> None:
        os.kill(os.getpid(), signum)
        signal.pause()  # not reached: the handler raises

    with pytest.raises(SystemExit) as exit:
        waiting()
    assert exit.value.code == status and capsys.readouterr().err == line + "\n"
    assert signal.getsignal(signum) is before  # put back for whatever runs next

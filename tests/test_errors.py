"""Bad input ends each entry point with one line, "error: <what and where>", status 2, no traceback.

The data module's own errors for every kind of bad line and file are in test_data.py; here, that they
reach the user as one line. Bad checkpoints: test_checkpoint_safety.py.
"""

import shutil
from pathlib import Path

import pytest

from conftest import TINY, predict
from entry_points import assert_error, run


@pytest.fixture
def data(tmp_path, small_data) -> Path:
    """A copy of the small data set that a test may break."""
    return Path(shutil.copytree(small_data, tmp_path / "data"))


def test_bad_data_line_names_file_and_line(train_tiny, data):
    lines = (data / "train.txt").read_text().splitlines()
    lines[2] = "0 1 x 3"
    (data / "train.txt").write_text("\n".join(lines) + "\n")
    assert_error(train_tiny("--data.data_dir", str(data), check=False), f"{data}/train.txt:3: not an integer: 'x'")


def test_predict_and_export_name_the_bad_data(trained, lm_ckpt, data, tmp_path):
    (data / "test.txt").write_text("0 1 x\n")
    output = tmp_path / "submission.txt"
    assert_error(predict(trained, data, output, check=False), f"{data}/test.txt:1: not an integer: 'x'")
    assert not output.exists()
    (data / "colormap.txt").write_text("1 2 3\n")  # export reads only the palette
    result = run(
        "export.py",
        "--ckpt_path",
        str(lm_ckpt),
        "--trainer.default_root_dir",  # its run's config.yaml is read only from a runs root
        str(trained),
        "--data.data_dir",
        str(data),
        "--out",
        str(tmp_path / "out"),
        check=False,
    )
    assert_error(result, f"{data}/colormap.txt: expected 167 colours, got 1")
    assert not (tmp_path / "out").exists()


def test_evaluate_names_the_bad_images_file(small_data, data):
    (data / "dev.txt").write_text("0 1 x\n")
    result = run("evaluate.py", "--images", str(data / "dev.txt"), "--data_dir", str(small_data), check=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: {data}/dev.txt:1: not an integer: 'x'"
    ]


def test_predict_and_export_name_a_misspelt_option(trained, lm_ckpt, small_data, tmp_path):
    assert_error(predict(trained, small_data, tmp_path / "x.txt", "--outptu", "y.txt", check=False),
                 "unrecognized arguments: --outptu y.txt")  # fmt: skip
    result = run("export.py", "--ckpt_path", str(lm_ckpt), "--trainer.default_root_dir", str(trained), "--data.data_dir", str(small_data), "--model.init_args.lrr=1",
                 "--out", str(tmp_path / "out"), check=False)  # fmt: skip
    assert_error(result, "'lrr' is not accepted")


@pytest.mark.parametrize("mode", ["checkpoint", "images"])
def test_evaluate_names_a_misspelt_option(mode, lm_ckpt, small_data):
    source = ("--config", str(TINY), "--ckpt_path", str(lm_ckpt), "--data.data_dir", str(small_data))
    if mode == "images":
        source = ("--images", str(small_data / "dev.txt"), "--data_dir", str(small_data))
    result = run("evaluate.py", *source, "--featuers", "classifier", check=False)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-3000:]
    assert_error(result, "--featuers")


def test_missing_file(train_tiny, data):
    (data / "test.txt").unlink()
    assert_error(train_tiny("--data.data_dir", str(data), check=False), "test.txt: file not found")


def test_bad_trainer_setting_is_one_line(train_tiny):
    assert_error(train_tiny("--trainer.max_epochs=-5", check=False), "max_epochs", "You passed in -5")


def test_unknown_architecture(train_tiny):
    assert_error(
        train_tiny("--model.init_args.model_type=gpt5", check=False), "model.model_type: unknown architecture 'gpt5'"
    )


def test_misspelled_keys_on_the_command_line_and_in_yaml(train_tiny, tmp_path):
    assert_error(train_tiny("--model.init_args.lrr=1", check=False), "'lrr' is not accepted")
    typo = tmp_path / "typo.yaml"
    typo.write_text("data:\n  batchsize: 4\n")
    assert_error(train_tiny("--config", str(typo), check=False), "'data' does not accept option 'batchsize'")


def test_nonfinite_loss_names_the_step(train_tiny):
    result = train_tiny("--model.init_args.lr=1e6", "--trainer.max_steps=30", check=False)
    message = assert_error(result, "the training loss is nan", "the run diverged")
    assert message.startswith("error: step ") and int(message.split()[2].rstrip(":")) > 0


def test_predict_into_a_missing_folder(trained, small_data, tmp_path):
    output = tmp_path / "no" / "such" / "submission.txt"
    assert_error(predict(trained, small_data, output, check=False), str(output.parent), "does not exist")


def test_predict_onto_a_folder_or_into_a_read_only_one(trained, small_data, tmp_path, tmpfs):
    folder = tmp_path / "out"
    folder.mkdir()
    assert_error(predict(trained, small_data, folder, check=False), f"{folder} is a folder; give a file name")
    read_only = tmpfs("read-only", size="1m", read_only=True, files={"submission.txt": b"earlier\n"})
    result = predict(trained, small_data, read_only / "submission.txt", check=False)
    assert_error(result, f"cannot write {read_only / 'submission.txt'}: {read_only} is on a read-only file system")
    assert (read_only / "submission.txt").read_bytes() == b"earlier\n"


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("lr=-1", "model.lr: must be greater than 0, got -1.0"),
        ("weight_decay=-0.1", "model.weight_decay: must be 0 or more, got -0.1"),
        ("warmup_steps=-5", "model.warmup_steps: must be 0 or more, got -5"),
        ("attention_chunks=0", "model.attention_chunks: must be 1 or more, got 0"),
        ("recon_every_n_epochs=0", "model.recon_every_n_epochs: must be 1 or more, got 0"),
        ("input_noise=1.5", "model.input_noise: must be in [0, 1), got 1.5"),
    ],
)
def test_bad_model_settings_name_the_key(train_tiny, setting, problem):
    assert assert_error(train_tiny(f"--model.init_args.{setting}", check=False)) == f"error: {problem}"

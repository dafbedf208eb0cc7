"""Bad input ends train.py / predict.py with one line, "error: <what and where>", status 2, no traceback."""

import shutil
from pathlib import Path

import pytest

from conftest import run_script


def assert_error(result, *parts: str) -> str:
    """The run failed with status 2 and stderr ends with one "error: ..." line holding ``parts``."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error: ")
    for part in parts:
        assert part in message, message
    return message


@pytest.fixture
def data(tmp_path, small_data) -> Path:
    """A copy of the small data set that a test may break."""
    return Path(shutil.copytree(small_data, tmp_path / "data"))


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("0 1 x 3", "train.txt:3: not an integer: 'x'"),
        ("0 " * 10, "train.txt:3: expected 400 ints, got 10"),
        ("167 " + "0 " * 399, "train.txt:3: value 167 at position 0 is outside the palette [0, 166]"),
    ],
    ids=["malformed", "wrong-length", "out-of-range"],
)
def test_bad_data_line_names_file_and_line(train_tiny, data, line, problem):
    replace_line(data / "train.txt", 3, line)
    assert_error(train_tiny("--data.data_dir", str(data), check=False), problem)


def test_empty_file(train_tiny, data):
    (data / "dev.txt").write_text("")
    assert_error(train_tiny("--data.data_dir", str(data), check=False), "dev.txt: no images (the file is empty)")


def test_missing_file(train_tiny, data):
    (data / "test.txt").unlink()
    assert_error(train_tiny("--data.data_dir", str(data), check=False), "test.txt: file not found")


def test_palette_of_wrong_size(train_tiny, data):
    lines = (data / "colormap.txt").read_text().splitlines()
    (data / "colormap.txt").write_text("\n".join(lines[:100]) + "\n")
    assert_error(train_tiny("--data.data_dir", str(data), check=False), "colormap.txt: expected 167 colours, got 100")


def test_unknown_architecture(train_tiny):
    assert_error(train_tiny("--model.init_args.model_type=gpt5", check=False), "model.model_type: unknown architecture 'gpt5'")


def test_misspelled_keys_on_the_command_line_and_in_yaml(train_tiny, tmp_path):
    assert_error(train_tiny("--model.init_args.lrr=1", check=False), "'lrr' is not accepted")
    typo = tmp_path / "typo.yaml"
    typo.write_text("data:\n  batchsize: 4\n")
    assert_error(train_tiny("--config", str(typo), check=False), "'data' does not accept option 'batchsize'")


def test_checkpoint_of_another_architecture(train_tiny, tmp_path):
    train_tiny("--trainer.max_steps=1")
    checkpoint = tmp_path / "runs" / "version_0" / "checkpoints" / "last.ckpt"
    before = checkpoint.read_bytes()
    llama = '{"num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "hidden_size": 16, "intermediate_size": 32}'
    result = train_tiny("--model.init_args.model_type=llama", f"--model.init_args.model_config={llama}",
                        f"--ckpt_path={checkpoint}", check=False)  # fmt: skip
    assert_error(
        result,
        f"{checkpoint}: checkpoint is a gpt2 model (n_layer 1, n_head 2, n_embd 16) with vocab 167",
        "the config asks for a llama model (num_hidden_layers 1",
    )
    assert checkpoint.read_bytes() == before  # the failed resume left the good checkpoint alone


def test_nonfinite_loss_names_the_step(train_tiny):
    result = train_tiny("--model.init_args.lr=1e6", "--trainer.max_steps=30", check=False)
    message = assert_error(result, "the training loss is nan", "the run diverged")
    assert message.startswith("error: step ") and int(message.split()[2].rstrip(":")) > 0


def test_predict_into_a_missing_folder(train_tiny, tmp_path, small_data):
    if not Path("predict.py").exists() and not (Path(__file__).parent.parent / "predict.py").exists():
        pytest.skip("no predict.py yet")
    train_tiny("--trainer.max_steps=1")
    output = tmp_path / "no" / "such" / "submission.txt"
    result = run_script(
        "predict.py", "--config", str(Path(__file__).parent / "configs" / "tiny.yaml"),
        "--trainer.default_root_dir", str(tmp_path / "runs"), "--data.data_dir", str(small_data),
        "--output", str(output), check=False,
    )  # fmt: skip
    assert_error(result, str(output.parent), "does not exist")


def test_predict_onto_a_folder_or_into_a_read_only_one(train_tiny, tmp_path, small_data, tmpfs):
    train_tiny("--trainer.max_steps=1")

    def predict(output):
        return run_script(
            "predict.py", "--config", str(Path(__file__).parent / "configs" / "tiny.yaml"),
            "--trainer.default_root_dir", str(tmp_path / "runs"), "--data.data_dir", str(small_data),
            "--output", str(output), check=False,
        )  # fmt: skip

    folder = tmp_path / "out"
    folder.mkdir()
    assert_error(predict(folder), f"{folder} is a folder; give a file name")
    read_only = tmpfs("read-only", size="1m", read_only=True, files={"submission.txt": b"earlier\n"})
    assert_error(predict(read_only / "submission.txt"), f"cannot write {read_only / 'submission.txt'}: {read_only} is on a read-only file system")
    assert (read_only / "submission.txt").read_bytes() == b"earlier\n"


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("lr=-1", "model.lr: must be greater than 0, got -1.0"),
        ("weight_decay=-0.1", "model.weight_decay: must be 0 or more, got -0.1"),
        ("warmup_steps=-5", "model.warmup_steps: must be 0 or more, got -5"),
        ("attention_chunks=0", "model.attention_chunks: must be 1 or more, got 0"),
        ("recon_every_n_epochs=0", "model.recon_every_n_epochs: must be 1 or more, got 0"),
    ],
)
def test_bad_optimizer_settings_name_the_key(train_tiny, setting, problem):
    assert_error(train_tiny(f"--model.init_args.{setting}", check=False), problem)

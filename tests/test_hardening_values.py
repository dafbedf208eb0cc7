"""Issue 35, values: decoding and data settings are checked when they are set, each refused in one line
naming its key, and best-of-N's batch is bounded before it takes the memory."""

import re
import shutil
from pathlib import Path

import pytest

import predict
from cli.errors import reported_errors
from conftest import DATA_DIR, TINY
from datamodules import PokemonDataModule
from generation.decoding import MAX_BEST_OF, MAX_SEQUENCES, Decoding, DecodingError


@pytest.fixture
def runs(tmp_path, trained) -> Path:
    """A copy of the tiny trained run."""
    return Path(shutil.copytree(trained, tmp_path / "runs"))


def predict_in_process(runs: Path, data: Path, output: Path, *args: str) -> None:
    predict.main([
        "--config", str(TINY), "--trainer.default_root_dir", str(runs), "--data.data_dir", str(data),
        "--output", str(output), *args,
    ])  # fmt: skip


def no_generation(monkeypatch) -> None:
    """Fails the test, instead of generating, if prediction gets as far as completing a prefix."""
    from lightning_modules.pixel_lm import PixelLM

    monkeypatch.setattr(PixelLM, "complete", lambda *args, **kwargs: pytest.fail("generation started"))


def predict_error(capsys, runs: Path, data: Path, output: Path, *args: str) -> str:
    """``predict.py`` in this process under the CLI's error policy; its one error line (status 2)."""
    with pytest.raises(SystemExit) as stop, reported_errors():
        predict_in_process(runs, data, output, *args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err, err[-3000:]
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"do_sample": True, "temperature": 0.0},
            "decoding.temperature: must be above 0 when sampling (do_sample), got 0.0",
        ),
        (
            {"do_sample": True, "temperature": -1.0},
            "decoding.temperature: must be above 0 when sampling (do_sample), got -1.0",
        ),
        (
            {"do_sample": True, "temperature": float("nan")},
            "decoding.temperature: must be above 0 when sampling (do_sample), got nan",
        ),
        ({"top_k": -1}, "decoding.top_k: must be 0 (no filter) or more, got -1"),
        ({"top_p": 0.0}, "decoding.top_p: must be above 0 and at most 1 (1: no filter), got 0.0"),
        ({"top_p": 2.0}, "decoding.top_p: must be above 0 and at most 1 (1: no filter), got 2.0"),
        ({"best_of": 0}, f"decoding.best_of: must be 1 to {MAX_BEST_OF}, got 0"),
        ({"best_of": 100_000}, f"decoding.best_of: must be 1 to {MAX_BEST_OF}, got 100000"),
        ({"consensus": -1}, "decoding.consensus: must be 0 or more (0 or 1: off), got -1"),
        ({"contrast": float("inf")}, "decoding.contrast: must be a finite number, got inf"),
    ],
    ids=[
        "temperature-0",
        "temperature-negative",
        "temperature-nan",
        "top_k",
        "top_p-0",
        "top_p-2",
        "best_of-0",
        "best_of-100000",
        "consensus",
        "contrast",
    ],  # fmt: skip
)
def test_decoding_settings_are_checked_when_set(settings, message):
    with pytest.raises(DecodingError, match="^" + re.escape(message) + "$"):
        Decoding(**settings)


def test_decoding_edges_that_are_fine_stay_fine():
    """The limits themselves are settings a user may give: no filter, greedy with any temperature, the largest N."""
    Decoding(do_sample=True, temperature=1e-3, top_k=0, top_p=1.0, best_of=MAX_BEST_OF, consensus=0)
    Decoding(do_sample=False, temperature=0.0)  # greedy ignores the temperature


def test_best_of_batch_is_bounded_before_it_is_drawn():
    Decoding(best_of=16).check_batch(80)  # the configs' best-of-16 of 80 prefixes
    Decoding(best_of=MAX_BEST_OF).check_batch(MAX_SEQUENCES // MAX_BEST_OF)
    message = "decoding.best_of: 1024 candidates for each of a batch's 80 prefixes (data.eval_batch_size) are 81920"
    with pytest.raises(DecodingError, match=re.escape(message)):
        Decoding(best_of=1024).check_batch(80)


def test_predict_refuses_a_best_of_batch_too_large_before_the_first_batch(
    runs, small_data, tmp_path, monkeypatch, capsys
):
    """16 prefixes x 1024 candidates: refused in one line when prediction starts, before anything is generated
    or written."""
    no_generation(monkeypatch)
    output = tmp_path / "submission.txt"
    line = predict_error(capsys, runs, small_data, output, "--model.init_args.decoding.best_of=1024")
    assert line.startswith("error: decoding.best_of: ") and "16384 sequences at once" in line
    assert not output.exists()


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            "model.init_args.decoding.do_sample=true --model.init_args.decoding.temperature=0",
            "error: decoding.temperature: must be above 0 when sampling (do_sample), got 0.0",
        ),  # fmt: skip
        (
            "model.init_args.decoding.top_p=2",
            "error: decoding.top_p: must be above 0 and at most 1 (1: no filter), got 2.0",
        ),
        ("model.init_args.decoding.best_of=100000", f"error: decoding.best_of: must be 1 to {MAX_BEST_OF}, got 100000"),
        ("data.batch_size=0", "error: data.batch_size: must be 1 or more, got 0"),
        ("data.eval_batch_size=-1", "error: data.eval_batch_size: must be 1 or more, got -1"),
        ("data.image_width=0", "error: data.image_width: must be 1 or more, got 0"),
    ],
    ids=["temperature", "top_p", "best_of", "batch_size", "eval_batch_size", "image_width"],
)
def test_predict_names_the_bad_setting_in_one_line(capsys, runs, small_data, tmp_path, monkeypatch, setting, message):
    no_generation(monkeypatch)  # a best_of of 100000 that got through would fill the machine's memory
    output = tmp_path / "submission.txt"
    output.write_text("earlier\n")
    args = [f"--{part}" for part in setting.split(" --")]
    assert predict_error(capsys, runs, small_data, output, *args) == message
    assert output.read_text() == "earlier\n"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"batch_size": 0}, "data.batch_size: must be 1 or more, got 0"),
        ({"eval_batch_size": 0}, "data.eval_batch_size: must be 1 or more, got 0"),
        ({"image_width": 0}, "data.image_width: must be 1 or more, got 0"),  # not "data.shift"
        ({"image_height": -3}, "data.image_height: must be 1 or more, got -3"),
        ({"num_workers": -1}, "data.num_workers: must be 0 or more, got -1"),
        (
            {"image_height": 1000, "image_width": 1000},
            "data.image_height x data.image_width: at most 65536 pixels, got 1000000",
        ),  # fmt: skip
        ({"prefix_len": 400}, "data.prefix_len: must be 1 to 399"),
        ({"num_new": 10**9}, "data.num_new: must be 1 to 100000, got 1000000000"),
    ],
)
def test_data_settings_are_checked_when_set(settings, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        PokemonDataModule(data_dir=str(DATA_DIR), **settings)

"""No file from elsewhere runs code: checkpoints are read weights-only, and exported folders hold no pickle."""

import json
import os
import pickle
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from checkpointing import CheckpointError, load_checkpoint, load_classifier, load_pixel_lm
from conftest import TINY, predict, tiny_args
from entry_points import assert_error, run
from generation.decoding import Decoding
from tiny_models import as_option, tiny_config

REFUSED = f"refused: it holds code ({os.system.__module__}.system)"
LLAMA = as_option(tiny_config("llama"))


class Payload:
    """Unpickled by a plain ``torch.load``, this runs a shell command: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "payload_ran"
    yield path
    assert not path.exists(), "the checkpoint's code ran"


def with_payload(source: Path, out: Path, marker: Path, **save_kwargs) -> Path:
    """A real checkpoint plus an object whose unpickling runs ``touch marker``."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["note"] = Payload(marker)
    torch.save(checkpoint, out, **save_kwargs)
    return out


def assert_refused(result, path: Path, marker: Path, *parts: str) -> None:
    """Failed with status 2 and one "...error: <path>: ..." line holding ``parts``, no traceback, and ran no code."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "error: " in line and str(path) in line, line
    for part in parts:
        assert part in line, line
    assert not marker.exists()


# --- every entry point that takes a checkpoint ------------------------------------------------------


def test_train_and_predict_ckpt_path(trained, lm_ckpt, small_data, tmp_path, marker):
    evil = with_payload(lm_ckpt, tmp_path / "evil.ckpt", marker)
    common = tiny_args(tmp_path / "runs", small_data)
    for script in ("train.py", "predict.py", "export.py"):
        extra = ("--out", str(tmp_path / "out")) if script == "export.py" else ()
        result = run(script, *common, "--ckpt_path", str(evil), *extra, check=False)
        assert_error(result, str(evil), REFUSED)
        assert not marker.exists()


def test_predict_reranker(trained, classifier_ckpt, small_data, tmp_path, marker):
    evil = with_payload(classifier_ckpt, tmp_path / "evil_judge.ckpt", marker)
    result = predict(trained, small_data, tmp_path / "out.txt", "--reranker", str(evil), check=False)
    assert_error(result, str(evil), REFUSED)


@pytest.mark.parametrize("which", ["ckpt_path", "classifier", "images"])
def test_evaluate(which, trained, lm_ckpt, classifier_ckpt, small_data, tmp_path, marker):
    evil = with_payload(classifier_ckpt if which != "ckpt_path" else lm_ckpt, tmp_path / "evil.ckpt", marker)
    judge = evil if which != "ckpt_path" else classifier_ckpt
    if which == "images":
        args = ("--images", str(small_data / "dev.txt"), "--classifier", str(judge))
    else:
        model = evil if which == "ckpt_path" else lm_ckpt
        args = (
            "--config",
            str(TINY),
            "--data.data_dir",
            str(small_data),
            "--ckpt_path",
            str(model),
            "--classifier",
            str(judge),
        )
    assert_refused(run("evaluate.py", *args, check=False), evil, marker, "error: ", REFUSED)


# The bench scores its reference rows (Inception features of 48 images) before it loads a run or the reranker.
SCORES_REFERENCES_FIRST = pytest.mark.slow


@pytest.mark.parametrize("which", ["judge", pytest.param("reranker", marks=SCORES_REFERENCES_FIRST),
                                   pytest.param("runs", marks=SCORES_REFERENCES_FIRST)])  # fmt: skip
def test_bench_quality(which, lm_ckpt, classifier_ckpt, small_data, tmp_path, marker):
    evil = with_payload(lm_ckpt if which == "runs" else classifier_ckpt, tmp_path / "evil.ckpt", marker)
    files = {"judge": classifier_ckpt, "reranker": classifier_ckpt, "runs": lm_ckpt, which: evil}
    args = [arg for key, path in files.items() for arg in (f"--{key}", str(path))]
    result = run("bench/quality.py", *args, "--data_dir", str(small_data), check=False)
    assert_refused(result, evil, marker, "error: ", REFUSED)


def test_bench_speed(lm_ckpt, tmp_path, marker):
    evil = with_payload(lm_ckpt, tmp_path / "evil.ckpt", marker)
    args = ("--configs", str(TINY), "--quick", "--threads", "1", "--device", "cpu", "--ckpt", str(evil))
    assert_refused(run("bench/speed.py", *args, check=False), evil, marker, "error: ", REFUSED)


def test_quality_callback_classifier(train_tiny, classifier_ckpt, tmp_path, marker):
    evil = with_payload(classifier_ckpt, tmp_path / "evil_judge.ckpt", marker)
    result = train_tiny(
        "--trainer.callbacks+=callbacks.QualityMetrics", f"--trainer.callbacks.classifier={evil}", check=False
    )
    assert_error(result, str(evil), REFUSED)


# --- the loader itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["zip", "legacy", "plain pickle", "open()"])
def test_loader_names_the_refused_global_of_any_format(how, lm_ckpt, tmp_path, marker):
    path = tmp_path / "evil.ckpt"
    if how == "zip":
        with_payload(lm_ckpt, path, marker)
    elif how == "legacy":
        with_payload(lm_ckpt, path, marker, _use_new_zipfile_serialization=False)
    elif how == "plain pickle":
        path.write_bytes(pickle.dumps({"state_dict": {}, "x": Payload(marker)}))
    else:
        torch.save({**torch.load(lm_ckpt, weights_only=True), "x": _Opener(marker)}, path)
    expected = "io.open" if how == "open()" else f"{os.system.__module__}.system"
    with pytest.raises(CheckpointError, match=f"^{re.escape(f'{path}: refused: it holds code ({expected})')}"):
        load_checkpoint(path)
    assert not marker.exists()


class _Opener:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_project_checkpoints_need_only_the_allow_listed_types(lm_ckpt, classifier_ckpt, train_tiny, tmp_path):
    """A tiny, a llama-shaped (sampling decoding) and a classifier checkpoint load weights-only as they are."""
    train_tiny(
        "--trainer.max_steps=2", "--model.init_args.model_type=llama", f"--model.init_args.model_config={LLAMA}",
        "--model.init_args.decoding.do_sample=true", "--model.init_args.decoding.top_k=50",
    )  # fmt: skip
    llama_ckpt = tmp_path / "runs" / "version_0" / "checkpoints" / "best.ckpt"
    for path in (lm_ckpt, llama_ckpt, classifier_ckpt):
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    assert load_pixel_lm(llama_ckpt).decoding == Decoding(do_sample=True, top_k=50)
    assert load_classifier(classifier_ckpt).palette.shape == (167, 3)
    # A PixelLM built in Python keeps its Decoding as the dataclass: the one project type allowed.
    checkpoint = torch.load(lm_ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["decoding"] = Decoding(do_sample=True, top_k=7)
    torch.save(checkpoint, tmp_path / "python.ckpt")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "python.ckpt") == [
        "generation.decoding.Decoding"
    ]
    assert load_pixel_lm(tmp_path / "python.ckpt").decoding.top_k == 7


# --- one-line errors for files that are no checkpoint of the right kind -----------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ("truncated", "is truncated (it ends before the checkpoint does)"),
        ("empty", "is empty (0 bytes), not a checkpoint"),
        ("text", "is not a checkpoint (torch.load cannot read it)"),
        ("tensor", "is not a Lightning checkpoint (it holds no state_dict)"),
        ("classifier", "is a PokemonClassifier checkpoint, not a PixelLM"),
    ],
)
def test_files_that_are_no_model_checkpoint(content, message, lm_ckpt, classifier_ckpt, tmp_path):
    path = tmp_path / "x.ckpt"
    if content == "truncated":
        data = lm_ckpt.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "text":
        path.write_text("this is not a checkpoint\n")
    elif content == "tensor":
        torch.save(torch.zeros(3), path)
    else:
        shutil.copy(classifier_ckpt, path)
    with pytest.raises(CheckpointError, match=f"^{re.escape(f'{path}: {message}')}"):
        load_checkpoint(path, "PixelLM")


def test_predict_ckpt_path_that_is_no_checkpoint(small_data, tmp_path):
    """The CLI checks --ckpt_path with the loader above before Lightning reads it: its message, on one line."""
    path = tmp_path / "x.ckpt"
    path.write_text("this is not a checkpoint\n")
    result = predict(tmp_path / "runs", small_data, tmp_path / "out.txt", "--ckpt_path", str(path), check=False)
    assert_error(result, f"{path}: is not a checkpoint (torch.load cannot read it)")


def test_reranker_given_a_language_model(trained, lm_ckpt, small_data, tmp_path):
    result = predict(trained, small_data, tmp_path / "out.txt", "--reranker", str(lm_ckpt), check=False)
    assert_error(result, f"{lm_ckpt}: is a PixelLM checkpoint, not a PokemonClassifier")


def test_evaluate_checkpoint_of_another_architecture(lm_ckpt, classifier_ckpt, small_data):
    result = run(
        "evaluate.py", "--config", str(TINY), "--data.data_dir", str(small_data), "--ckpt_path", str(lm_ckpt),
        "--classifier", str(classifier_ckpt), "--model.init_args.model_type=llama", f"--model.init_args.model_config={LLAMA}",
        check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {lm_ckpt}: checkpoint is a gpt2 model (n_layer 1, n_head 2, n_embd 16)"), line
    assert "the config asks for a llama model" in line


# --- exported folders ------------------------------------------------------------------------------------


@pytest.mark.slow  # two exports, four predictions, an evaluation
def test_export_predicts_as_the_checkpoint_and_holds_no_pickle(trained, lm_ckpt, classifier_ckpt, small_data, tmp_path):
    out = tmp_path / "tiny_export"
    result = run(
        "export.py", "--trainer.default_root_dir", str(trained), "--data.data_dir", str(small_data), "--out", str(out)
    )
    assert f"Exported {lm_ckpt} to {out}/" in result.stdout  # the newest run's best.ckpt
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "pixel_lm.json",
    ]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary folder left beside it
    for path in out.glob("*.json"):  # JSON and safetensors (a JSON header, then raw numbers): no pickle
        json.loads(path.read_text())
    checkpoint = torch.load(lm_ckpt, weights_only=True)
    weights = load_file(out / "model.safetensors")
    for key, value in weights.items():  # the EMA average best.ckpt holds, not the last step's weights
        assert torch.equal(value, checkpoint["state_dict"][f"model.{key}"])
    assert any(
        not torch.equal(checkpoint["state_dict"][key], checkpoint["current_model_state"][key])
        for key in checkpoint["state_dict"]
    )

    from_ckpt, from_folder = tmp_path / "from_ckpt.txt", tmp_path / "from_folder.txt"
    trusted = ("--trainer.default_root_dir", str(trained))  # its run's config.yaml is read only from a runs root
    run(
        "predict.py",
        "--ckpt_path",
        str(lm_ckpt),
        *trusted,
        "--data.data_dir",
        str(small_data),
        "--output",
        str(from_ckpt),
    )
    run("predict.py", "--ckpt_path", str(out), "--data.data_dir", str(small_data), "--output", str(from_folder))
    assert from_folder.read_bytes() == from_ckpt.read_bytes()

    again = run(
        "export.py",
        "--ckpt_path",
        str(lm_ckpt),
        *trusted,
        "--data.data_dir",
        str(small_data),
        "--out",
        str(out),
        check=False,
    )
    assert_error(again, f"{out}: exists and is not empty; pass --overwrite to replace it")

    other = Path(shutil.copytree(out, tmp_path / "other_palette"))
    settings = json.loads((other / "pixel_lm.json").read_text())
    settings["palette"][5] = [1, 2, 3]
    (other / "pixel_lm.json").write_text(json.dumps(settings))
    result = run(
        "predict.py",
        "--ckpt_path",
        str(other),
        "--data.data_dir",
        str(small_data),
        "--output",
        str(tmp_path / "x.txt"),
        check=False,
    )
    assert_error(result, f"{other}: its palette differs from the data's at colour 5 ([1, 2, 3] there")

    result = run(
        "evaluate.py", "--ckpt_path", str(out), "--data.data_dir", str(small_data), "--classifier", str(classifier_ckpt)
    )
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert (
        printed["checkpoint"] == str(out) and printed["num_images"] == 16 and printed["decoding"]["do_sample"] is False
    )
    # A config of another size does not silently take the folder's weights.
    wrong = run(
        "predict.py", "--config", str(TINY), '--model.init_args.model_config={"n_layer": 1, "n_head": 2, "n_embd": 32}',
        "--ckpt_path", str(out), "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--data.data_dir", str(small_data), "--output", str(tmp_path / "x.txt"), check=False,
    )  # fmt: skip
    assert_error(wrong, f"{out}: the exported model is a gpt2 model (n_layer 1, n_head 2, n_embd 16)", "n_embd 32")

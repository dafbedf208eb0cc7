"""The reranker trained with a model (callbacks.TrainReranker) and predict.py's best-of-N that finds it."""

from pathlib import Path

import yaml

from checkpointing import load_classifier
from conftest import TINY
from entry_points import assert_error, run

# A classifier of a few steps that validates (its best.ckpt is what predict.py takes) and logs nothing.
QUICK_CLASSIFIER = [
    "--trainer.max_epochs=2", "--trainer.check_val_every_n_epoch=1", "--trainer.max_time=null", "--trainer.logger=false",
]  # fmt: skip


def config_with_reranker(tmp_path: Path, classifier_config: str = "classifier.yaml") -> Path:
    """tests/configs/tiny.yaml with a TrainReranker callback, as configs/llama.yaml has (a bare config name)."""
    config = yaml.safe_load(TINY.read_text())
    reranker = {"config": classifier_config, "args": QUICK_CLASSIFIER}
    config["trainer"]["callbacks"].append({"class_path": "callbacks.TrainReranker", "init_args": reranker})
    path = tmp_path / "tiny_reranked.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_training_ends_with_a_reranker_that_predict_uses(train_tiny, tmp_path, small_data):
    elsewhere = tmp_path / "elsewhere"  # python /path/to/train.py from another folder finds configs/classifier.yaml
    elsewhere.mkdir()
    result = train_tiny("--trainer.max_steps=2", config=config_with_reranker(tmp_path), cwd=elsewhere)
    run_dir = tmp_path / "runs" / "version_0"
    reranker = run_dir / "reranker" / "version_0" / "checkpoints" / "best.ckpt"
    assert f"Reranker: {reranker}" in result.stdout + result.stderr  # Lightning's info lines go to stderr
    assert load_classifier(reranker).hparams.image_width == 20  # a PokemonClassifier's weights-only checkpoint
    trained_on = yaml.safe_load((reranker.parent.parent / "config.yaml").read_text())["data"]["data_dir"]
    assert Path(trained_on) == small_data  # the model's images, not the shipped split

    common = ("--trainer.default_root_dir", str(tmp_path / "runs"), "--model.init_args.decoding.do_sample=true")
    found, given = tmp_path / "found.txt", tmp_path / "given.txt"
    result = run("predict.py", *common, "--model.init_args.decoding.best_of=3", "--output", str(found))
    assert f"Reranking with {reranker} (trained with the model)" in result.stdout
    run(
        "predict.py",
        *common,
        "--model.init_args.decoding.best_of=3",
        "--reranker",
        str(reranker),
        "--output",
        str(given),
    )
    assert found.read_bytes() == given.read_bytes()

    # One sample per prefix takes no reranker and says nothing about one.
    single = run("predict.py", *common, "--output", str(tmp_path / "single.txt"))
    assert "Reranking" not in single.stdout and "reranker" not in single.stdout


def test_best_of_without_a_reranker_says_what_it_keeps(trained, small_data, tmp_path):
    result = run(
        "predict.py", "--trainer.default_root_dir", str(trained), "--data.data_dir", str(small_data),
        "--model.init_args.decoding.do_sample=true", "--model.init_args.decoding.best_of=2",
        "--output", str(tmp_path / "out.txt"),
    )  # fmt: skip
    assert (
        "best_of=2 and no reranker in this run: keeping the sample the model itself scores best "
        "(decoding.contrast=0.0); --reranker CLASSIFIER keeps the one a classifier does"
    ) in result.stdout
    assert (tmp_path / "out.txt").is_file()


def test_a_failed_reranker_is_one_error_and_keeps_the_model(train_tiny, tmp_path):
    missing = str(tmp_path / "no_such_classifier.yaml")
    result = train_tiny("--trainer.max_steps=2", config=config_with_reranker(tmp_path, missing), check=False)
    last = assert_error(result, "error: reranker: ", passed_on=1)  # the reranker's own line: no such file
    assert last.endswith("failed (exit status 2)"), last
    assert (tmp_path / "runs" / "version_0" / "checkpoints" / "best.ckpt").is_file()  # the model is kept

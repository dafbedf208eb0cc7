"""What a W&B user finds in the runs: best values in the summary, the whole config, the reranker's
run grouped with its model's, one learning-rate curve, artifacts on request.

W&B 0.31 writes an offline run's summary and config only into its ``.wandb`` log (``files/`` gets
``wandb-summary.json`` and ``config.yaml`` when ``wandb sync`` uploads it), so these tests read the log.
"""

import json
import time
from pathlib import Path

import pytest
import yaml

from checkpointing.run_folders import RUN_DIR_ENV
from conftest import TINY
from wandb_records import records


def finished_records(run_dir: Path, timeout: float = 60) -> list:
    """The records of the one offline W&B run under ``run_dir/wandb``, once W&B has written its end.

    ``wandb.finish()`` returns before W&B's service has flushed the log (it may hold the header only).
    """
    (path,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        found = list(records(path))
        if any(record.WhichOneof("record_type") == "exit" for record in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def as_dict(items) -> dict:
    """W&B's ``(key or nested_key, value_json)`` items as a dict; nested keys joined by ``/`` as they were logged."""
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def read_run(run_dir: Path) -> dict:
    """The one offline W&B run under ``run_dir/wandb``: id, group, job type, config, summary, history, artifacts."""
    run = {"config": {}, "summary": {}, "rows": [], "artifacts": []}
    for record in finished_records(run_dir):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(group=record.run.run_group, job_type=record.run.job_type, id=record.run.run_id)
            run["config"].update(as_dict(record.run.config.update))
        elif kind == "config":
            run["config"].update(as_dict(record.config.update))
        elif kind == "summary":
            run["summary"].update(as_dict(record.summary.update))
        elif kind == "history":
            run["rows"].append(as_dict(record.history.item))
        elif kind == "artifact":
            files = sorted(entry.path for entry in record.artifact.manifest.contents)
            run["artifacts"].append((record.artifact.name, record.artifact.type, files))
    run["keys"] = {key for row in run["rows"] for key in row}
    return run


def values(run: dict, key: str) -> list:
    return [row[key] for row in run["rows"] if key in row]


@pytest.fixture
def wandb_offline(monkeypatch):
    """W&B offline, and the run-folder hand-over variable of an in-process run removed again afterwards."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv(RUN_DIR_ENV, "unset")  # recorded as absent, so it is removed after the test
    monkeypatch.delenv(RUN_DIR_ENV)
    for name in ("WANDB_RUN_GROUP", "WANDB_JOB_TYPE", "WANDB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


def test_summary_keeps_each_validation_metrics_best_value(tmp_path, wandb_offline, capfd):
    import wandb

    from callbacks import WandbLogger

    logger = WandbLogger(project="pokemon-pixels-tests", name="unit", save_dir=str(tmp_path))
    for step, (bits, accuracy, loss) in enumerate([(3.0, 0.1, 5.0), (1.0, 0.5, 4.0), (2.0, 0.3, 4.5)]):
        logger.log_metrics({"val/bits_per_pixel": bits, "val/acc_real": accuracy, "train/loss": loss}, step=step)
    wandb.finish()
    run = read_run(tmp_path)
    assert run["summary"]["val/bits_per_pixel"] == {"min": 1.0}  # the best, not the last (2.0)
    assert run["summary"]["val/acc_real"] == {"max": 0.5}
    assert run["summary"]["train/loss"] == 4.5  # training values keep their last
    assert run["group"] == f"unit-{run['id']}" and run["job_type"] == "train"
    assert "anonymous setting has no effect" not in capfd.readouterr().err


@pytest.fixture(scope="module")
def trained_with_reranker(tmp_path_factory, small_data):
    """A tiny Muon run whose TrainReranker trains a one-epoch classifier, with W&B offline, in this process."""
    import wandb

    import train

    folder = tmp_path_factory.mktemp("wandb_run")
    config = yaml.safe_load(TINY.read_text())
    config["model"]["init_args"]["optimizer"] = "muon"  # two parameter groups at one learning rate
    one_epoch = ["--trainer.max_epochs=1", "--trainer.max_time=null", "--trainer.check_val_every_n_epoch=1"]
    config["trainer"]["callbacks"].append({"class_path": "callbacks.TrainReranker", "init_args": {"args": one_epoch}})
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv(RUN_DIR_ENV, "unset")
        patch.delenv(RUN_DIR_ENV)
        train.main([
            "--config", str(folder / "config.yaml"), "--trainer.default_root_dir", str(folder / "runs"),
            "--data.data_dir", str(small_data), "--trainer.max_steps=-1", "--trainer.max_epochs=3",
        ])  # fmt: skip
        wandb.finish()
    return folder / "runs" / "version_0"


def test_model_run_summary_holds_the_best_dev_values(trained_with_reranker):
    run = read_run(trained_with_reranker)
    bits = values(run, "val/bits_per_pixel")
    assert len(bits) == 3
    assert run["summary"]["val/bits_per_pixel"] == {"min": min(bits)}
    assert run["summary"]["val/loss"] == {"min": min(values(run, "val/loss"))}
    assert run["summary"]["val/recon_acc"] == {"max": max(values(run, "val/recon_acc"))}


def test_model_run_config_is_the_whole_resolved_config(trained_with_reranker):
    logged = read_run(trained_with_reranker)["config"]
    saved = yaml.safe_load((trained_with_reranker / "config.yaml").read_text())
    for key in ("seed_everything", "trainer", "data", "model"):
        assert logged[key] == saved[key], key  # what config.yaml holds, under the same keys
    assert logged["trainer"]["max_epochs"] == 3 and logged["data"]["batch_size"] == 8
    callbacks = [callback["class_path"] for callback in logged["trainer"]["callbacks"]]
    assert "callbacks.TrainReranker" in callbacks and "lightning.pytorch.callbacks.EMAWeightAveraging" in callbacks
    assert logged["model_type"] == "gpt2"  # and the model's hyperparameters, as Lightning logs them


def test_learning_rate_is_logged_once(trained_with_reranker):
    keys = read_run(trained_with_reranker)["keys"]
    assert sorted(key for key in keys if key.startswith("lr-")) == ["lr-MuonAdamW"]  # not /pg1 and /pg2


def test_reranker_run_is_grouped_with_its_model_run(trained_with_reranker):
    model = read_run(trained_with_reranker)
    (reranker_dir,) = (trained_with_reranker / "reranker").glob("version_*")
    reranker = read_run(reranker_dir)
    assert model["job_type"] == "train" and reranker["job_type"] == "reranker"
    assert model["group"] == reranker["group"] == f"tiny-{model['id']}"
    assert reranker["summary"]["val/loss"] == {"min": min(values(reranker, "val/loss"))}


def test_submission_is_logged_as_an_artifact_on_request(trained_with_reranker, small_data, tmp_path, wandb_offline):
    import predict

    output = tmp_path / "submission.txt"
    checkpoint = trained_with_reranker / "checkpoints" / "best.ckpt"
    trusted = ["--trainer.default_root_dir", str(trained_with_reranker.parent)]  # the run's config.yaml is read
    predict.main([*trusted, "--ckpt_path", str(checkpoint), "--output", str(output), "--data.data_dir", str(small_data),
                  "--wandb_artifact=true"])  # fmt: skip
    run = read_run(trained_with_reranker / "artifacts")
    assert run["artifacts"] == [("tiny-submission", "submission", ["submission.png", "submission.txt"])]
    assert run["group"] == read_run(trained_with_reranker)["group"] and run["job_type"] == "submission"

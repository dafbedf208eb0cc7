"""FID and PDR measured locally: known answers, no network, clear errors, evaluate.py and the callback."""

import json
import socket

import pytest
import torch
from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

from conftest import DATA_DIR, ROOT, run_script
from datamodules.pixel_files import read_images
from evaluation.scoring import image_quality, load_classifier
from evaluation.metrics import FeaturesUnavailable, PokemonDetectionRate, build_fid
from wandb_records import history, metric

MODEL_FIELDS = {"checkpoint", "classifier", "fid", "pdr", "features", "num_images", "pixel_accuracy", "bits_per_pixel", "decoding"}


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory, small_data):
    """A briefly trained classifier checkpoint (its numbers do not matter here, its format does)."""
    root = tmp_path_factory.mktemp("judge") / "runs"
    run_script(
        "train.py", "--config", str(ROOT / "configs/classifier.yaml"),
        "--trainer.default_root_dir", str(root), "--data.data_dir", str(small_data),
        "--trainer.max_epochs=-1", "--trainer.max_steps=4", "--trainer.max_time=null", "--trainer.logger=false",
    )  # fmt: skip
    return root / "version_0" / "checkpoints" / "last.ckpt"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_pdr_counts_scores_above_threshold_across_batches():
    pdr = PokemonDetectionRate()
    pdr.update(torch.tensor([0.2, 0.6, 0.9]))
    pdr.update(torch.tensor([0.5, 0.51]))  # exactly 0.5 is not "above"
    assert pdr.compute().item() == pytest.approx(3 / 5)
    assert PokemonDetectionRate(threshold=0.85)(torch.tensor([0.9, 0.8])).item() == pytest.approx(0.5)


def test_fid_with_classifier_features_known_answers_offline(classifier_ckpt, no_network):
    classifier = load_classifier(classifier_ckpt)
    dev = read_images(DATA_DIR / "dev.txt")
    same = image_quality(dev, dev, classifier)
    assert same["features"] == "classifier penultimate layer (64-d)" and same["num_images"] == 80
    noisy = dev.clone()
    hit = torch.rand(dev.shape, generator=torch.Generator().manual_seed(0)) < 0.3
    noisy[hit] = torch.randint(0, 167, (int(hit.sum()),), generator=torch.Generator().manual_seed(1))
    different = image_quality(noisy, dev, classifier)["fid"]
    # The features' scale depends on the classifier, so "about 0" is relative to a real difference.
    assert different > 0 and abs(same["fid"]) < 1e-3 * different


@pytest.mark.skipif(_TORCH_FIDELITY_AVAILABLE, reason="torch-fidelity is installed here")
def test_inception_features_without_torch_fidelity_is_a_clear_error(classifier_ckpt):
    with pytest.raises(FeaturesUnavailable, match="pip install --no-deps torch-fidelity"):
        build_fid("inception")
    result = run_script(
        "evaluate.py", "--images", str(DATA_DIR / "dev.txt"), "--classifier", str(classifier_ckpt),
        "--features", "inception", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evaluate.py: error: FID with Inception features needs torch-fidelity")


def test_evaluate_checkpoint_prints_every_field(train_tiny, tmp_path, small_data, classifier_ckpt):
    train_tiny("--trainer.max_steps=2")
    out = tmp_path / "scores.json"
    result = run_script(
        "evaluate.py", "--config", str(ROOT / "tests/configs/tiny.yaml"),
        "--trainer.default_root_dir", str(tmp_path / "runs"), "--data.data_dir", str(small_data),
        "--classifier", str(classifier_ckpt), "--json_out", str(out),
        "--model.init_args.decoding.do_sample=true", "--model.init_args.decoding.top_k=50",
        "--completions_out", str(tmp_path / "completions.txt"),
    )  # fmt: skip
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(printed) == MODEL_FIELDS
    assert json.loads(out.read_text()) == printed
    assert printed["checkpoint"].endswith("version_0/checkpoints/best.ckpt")  # the newest run's best
    assert printed["num_images"] == 16 and printed["decoding"]["top_k"] == 50
    assert printed["fid"] >= 0 and 0 <= printed["pdr"] <= 1 and 0 <= printed["pixel_accuracy"] <= 1
    assert 0 < printed["bits_per_pixel"] < 10
    assert any(line.startswith("bits_per_pixel  ") for line in result.stdout.splitlines())  # the table
    completions = read_images(tmp_path / "completions.txt", 400, 167)
    assert torch.equal(completions[:, :240], read_images(small_data / "dev.txt")[:, :240])


def test_evaluate_images_file_against_itself(small_data, classifier_ckpt):
    dev = str(small_data / "dev.txt")
    result = run_script("evaluate.py", "--images", dev, "--reference", dev, "--classifier", str(classifier_ckpt))
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(printed) == {"images", "reference", "classifier", "fid", "pdr", "features", "num_images"}
    assert printed["fid"] == pytest.approx(0, abs=1e-2) and printed["features"].startswith("classifier")


def test_quality_callback_logs_fid_and_pdr_for_checkpointing(train_tiny, tmp_path, classifier_ckpt):
    train_tiny(
        "--trainer.max_steps=-1", "--trainer.max_epochs=2",
        "--trainer.callbacks+=callbacks.QualityMetrics", f"--trainer.callbacks.classifier={classifier_ckpt}",
        "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.monitor=val/fid",
        "--trainer.callbacks.filename=best_fid", f"--trainer.callbacks.dirpath={tmp_path / 'by_fid'}",
        wandb_mode="offline",
    )  # fmt: skip
    rows = history(tmp_path / "runs" / "version_0")
    fids, pdrs = metric(rows, "val/fid"), metric(rows, "val/pdr")
    assert len(fids) == 2 and len(pdrs) == 2 and all(0 <= p <= 1 for p in pdrs)
    checkpoint = torch.load(tmp_path / "by_fid" / "best_fid.ckpt", weights_only=False)
    scores = {key: value for key, value in checkpoint["callbacks"].items() if "val/fid" in key}
    assert next(iter(scores.values()))["best_model_score"].item() == pytest.approx(min(fids), rel=1e-4)

"""FID and PDR measured locally: known answers, no network, clear errors, evaluate.py and the callback.

Inception features cost 0.25-0.9 s per image on one CPU thread, so the runs that use them score
few images and are marked slow; Inception's own checks are in test_inception.py.
"""

import json
import shutil
import socket

import pytest
import torch

from conftest import DATA_DIR, TINY
from datamodules.pixel_files import read_images, read_palette
from entry_points import run
from evaluation.metrics import FeaturesUnavailable, PokemonDetectionRate, build_fid
from evaluation.scoring import CLASSIFIER_HINT, QualityJudge, load_classifier
from run_logs import history, metric

REFERENCES = {"fid_ref_nearest", "fid_ref_real"}
COUNTS = {"features", "num_images", "num_reference_images"}
MODEL_FIELDS = {"checkpoint", "classifier", "pixel_accuracy", "bits_per_pixel", "decoding", "decode_s"}
CLASSIFIER_FIELDS = {
    "pdr",
    "fid_classifier",
    "fid_classifier_ref_nearest",
    "fid_classifier_ref_real",
    "features_classifier",
}


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
    dev, train = read_images(DATA_DIR / "dev.txt"), read_images(DATA_DIR / "train.txt")
    judge = QualityJudge(dev, read_palette(DATA_DIR / "colormap.txt"), train, 240, classifier, features="classifier")
    same = judge(dev)
    assert same["features"] == "classifier penultimate layer (64-d)" and same["num_images"] == 80
    assert "fid_classifier" not in same  # the headline fid is the classifier's already
    noisy = dev.clone()
    hit = torch.rand(dev.shape, generator=torch.Generator().manual_seed(0)) < 0.3
    noisy[hit] = torch.randint(0, 167, (int(hit.sum()),), generator=torch.Generator().manual_seed(1))
    different = judge(noisy)
    # The features' scale depends on the classifier, so "about 0" is relative to a real difference.
    assert different["fid"] > 0 and abs(same["fid"]) < 1e-3 * different["fid"]
    assert same["fid_ref_nearest"] == different["fid_ref_nearest"] > 0  # measured once, the same for every set


def test_fid_between_sets_pairs_every_two_and_is_zero_only_for_the_same_set(classifier_ckpt):
    """``fid_between`` (bench/quality.py --spread): one FID per pair, in combinations order, with the judge's features."""
    dev, train = read_images(DATA_DIR / "dev.txt"), read_images(DATA_DIR / "train.txt")
    judge = QualityJudge(
        dev,
        read_palette(DATA_DIR / "colormap.txt"),
        train,
        240,
        load_classifier(classifier_ckpt),
        features="classifier",
    )
    noisy = dev.clone()
    hit = torch.rand(dev.shape, generator=torch.Generator().manual_seed(0)) < 0.3
    noisy[hit] = torch.randint(0, 167, (int(hit.sum()),), generator=torch.Generator().manual_seed(1))
    dev_noisy, dev_dev, noisy_dev = judge.fid_between([dev, noisy, dev])  # pairs (0, 1), (0, 2), (1, 2)
    assert dev_noisy > 0 and abs(dev_dev) < 1e-3 * dev_noisy  # set 2 is set 0 again
    assert dev_noisy == pytest.approx(judge(noisy)["fid"], rel=1e-3)  # the judge's own fid, the same features
    assert noisy_dev == pytest.approx(dev_noisy, rel=1e-3)  # a distance: either set may come first
    assert judge.fid_between([dev]) == []


def test_classifier_features_without_a_classifier_is_a_clear_error():
    with pytest.raises(FeaturesUnavailable, match=r"needs a classifier checkpoint \(--classifier PATH\)"):
        build_fid("classifier")


def rows(stdout: str) -> dict[str, str]:
    """The printed table, name -> the rest of its line."""
    return dict(line.split(None, 1) for line in stdout.strip().splitlines()[:-1] if len(line.split(None, 1)) == 2)


@pytest.fixture
def eight_dev(tmp_path, small_data):
    """The small data with 8 dev images: Inception scores dev, completions and both references."""
    folder = tmp_path / "data8"
    shutil.copytree(small_data, folder)
    (folder / "dev.txt").write_text("\n".join((small_data / "dev.txt").read_text().splitlines()[:8]) + "\n")
    return folder


@pytest.mark.slow
def test_evaluate_checkpoint_without_classifier_prints_inception_fid_references_and_a_hint(
    trained, tmp_path, eight_dev
):
    out = tmp_path / "scores.json"
    result = run(
        "evaluate.py", "--config", str(TINY),
        "--trainer.default_root_dir", str(trained), "--data.data_dir", str(eight_dev),
        "--json_out", str(out), "--model.init_args.decoding.do_sample=true", "--model.init_args.decoding.top_k=50",
        "--completions_out", str(tmp_path / "completions.txt"),
    )  # fmt: skip
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(printed) == {"fid"} | REFERENCES | COUNTS | MODEL_FIELDS
    assert json.loads(out.read_text()) == printed
    assert result.stdout.splitlines()[0] == CLASSIFIER_HINT
    assert "python train.py --config configs/classifier.yaml" in CLASSIFIER_HINT
    assert printed["checkpoint"].endswith("version_0/checkpoints/best.ckpt")  # the newest run's best
    assert printed["classifier"] is None and printed["features"].startswith("Inception-v3 pool (2048-d")
    assert printed["num_images"] == printed["num_reference_images"] == 8 and printed["decoding"]["top_k"] == 50
    # A 3-step model draws noise; copying real bottoms is far better, real images better still on their own.
    assert printed["fid"] > printed["fid_ref_nearest"] > 0 and printed["fid_ref_real"] > 0
    table = rows(result.stdout)
    assert "a model should beat it" in table["fid_ref_nearest"] and "real training images" in table["fid_ref_real"]
    assert 0 <= printed["pixel_accuracy"] <= 1 and 0 < printed["bits_per_pixel"] < 10 and printed["decode_s"] > 0
    completions = read_images(tmp_path / "completions.txt", 400, 167)
    assert torch.equal(completions[:, :240], read_images(eight_dev / "dev.txt")[:, :240])


def test_evaluate_checkpoint_with_classifier_features_prints_pdr(trained, small_data, classifier_ckpt):
    result = run(
        "evaluate.py", "--config", str(TINY),
        "--trainer.default_root_dir", str(trained), "--data.data_dir", str(small_data),
        "--classifier", str(classifier_ckpt), "--features", "classifier",
    )  # fmt: skip
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(printed) == {"fid", "pdr"} | REFERENCES | COUNTS | MODEL_FIELDS
    assert printed["features"] == "classifier penultimate layer (64-d)" and 0 <= printed["pdr"] <= 1
    assert CLASSIFIER_HINT not in result.stdout


@pytest.mark.slow
def test_evaluate_images_with_classifier_prints_pdr_and_both_fids(eight_dev, classifier_ckpt):
    eight = eight_dev / "dev.txt"
    result = run(
        "evaluate.py", "--images", str(eight), "--reference", str(eight), "--data_dir", str(eight_dev),
        "--classifier", str(classifier_ckpt),
    )  # fmt: skip
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(printed) == {"images", "reference", "classifier", "fid"} | REFERENCES | COUNTS | CLASSIFIER_FIELDS
    assert printed["fid"] == pytest.approx(0, abs=1e-2) and printed["fid_classifier"] == pytest.approx(0, abs=1e-2)
    assert printed["features"].startswith("Inception") and printed["features_classifier"].startswith("classifier")
    assert printed["fid_ref_nearest"] > 1 and printed["fid_classifier_ref_real"] > 0 and 0 <= printed["pdr"] <= 1
    names = [line.split()[0] for line in result.stdout.splitlines()[:-1]]
    assert names.index("fid_ref_nearest") == names.index("fid") + 1  # each FID with its reference points beside it
    assert names.index("fid_classifier_ref_real") == names.index("fid_classifier") + 2
    assert CLASSIFIER_HINT not in result.stdout


def test_quality_callback_logs_fid_and_pdr_for_checkpointing(train_tiny, tmp_path, classifier_ckpt):
    train_tiny(
        "--trainer.max_steps=-1", "--trainer.max_epochs=2",
        "--trainer.callbacks+=callbacks.QualityMetrics", f"--trainer.callbacks.classifier={classifier_ckpt}",
        "--trainer.callbacks.features=classifier", "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.monitor=val/fid",
        "--trainer.callbacks.filename=best_fid", f"--trainer.callbacks.dirpath={tmp_path / 'by_fid'}",
        wandb_mode="offline",
    )  # fmt: skip
    rows = history(tmp_path / "runs" / "version_0")
    fids, pdrs = metric(rows, "val/fid"), metric(rows, "val/pdr")
    assert len(fids) == 2 and len(pdrs) == 2 and all(0 <= p <= 1 for p in pdrs)
    checkpoint = torch.load(tmp_path / "by_fid" / "best_fid.ckpt", weights_only=False)
    scores = {key: value for key, value in checkpoint["callbacks"].items() if "val/fid" in key}
    assert next(iter(scores.values()))["best_model_score"].item() == pytest.approx(min(fids), rel=1e-4)


@pytest.mark.slow
def test_quality_callback_logs_inception_fid_without_a_classifier(train_tiny, tmp_path):
    train_tiny(
        "--trainer.max_steps=-1", "--trainer.max_epochs=2", "--trainer.callbacks+=callbacks.QualityMetrics",
        "--data.eval_batch_size=8", "--trainer.limit_val_batches=1", wandb_mode="offline",  # 8 dev images
    )  # fmt: skip
    rows = history(tmp_path / "runs" / "version_0")
    fids = metric(rows, "val/fid")  # the second epoch reuses the dev images' features of the first
    assert len(fids) == 2 and all(0 < fid < 10_000 for fid in fids)
    assert not metric(rows, "val/pdr") and not metric(rows, "val/fid_classifier")

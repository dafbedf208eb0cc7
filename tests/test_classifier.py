"""The Pokémon judge: trained through train.py, self-contained checkpoints, made-up negatives."""

import pytest
import torch

from conftest import DATA_DIR, ROOT, run_script
from datamodules.pixel_files import read_images, read_palette
from lightning_modules import PokemonClassifier
from datamodules.negatives import NEGATIVE_TYPES, Corruptor, fit_bigram, translate

CONFIG = ROOT / "configs" / "classifier.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_data):
    """A classifier trained for 120 steps on the 48-image copy of the data (about 15 s).

    Only the easy negatives: with 48 real images, another image's bottom (splice) takes longer to learn.
    """
    root = tmp_path_factory.mktemp("classifier") / "runs"
    run_script(
        "train.py", "--config", str(CONFIG),
        "--trainer.default_root_dir", str(root), "--data.data_dir", str(small_data),
        "--trainer.max_epochs=-1", "--trainer.max_steps=120", "--trainer.max_time=null",
        "--trainer.check_val_every_n_epoch=20", "--data.batch_size=16",
        "--model.init_args.negative_types=[blank,noise,random,bands]", "--model.init_args.negative_weights=null",
    )  # fmt: skip
    return root / "version_0" / "checkpoints" / "last.ckpt"


def test_trained_classifier_prefers_real_images(trained, small_data):
    classifier = PokemonClassifier.load_from_checkpoint(trained, map_location="cpu")
    dev = read_images(small_data / "dev.txt")
    corrupt = Corruptor(240, 20, fit_bigram(dev, 167))
    generator = torch.Generator().manual_seed(0)
    real = classifier.probability(dev)
    for kind in ("blank", "noise"):
        spoiled = classifier.probability(corrupt(dev, kind, generator))
        assert real.mean() > spoiled.mean() + 0.3, kind
        assert (real > 0.5).float().mean() > (spoiled > 0.5).float().mean(), kind


def test_checkpoint_is_self_contained(trained, small_data):
    checkpoint = torch.load(trained, weights_only=False)
    assert torch.equal(checkpoint["state_dict"]["palette"], read_palette(small_data / "colormap.txt"))
    assert checkpoint["state_dict"]["bigram"].sum(1).allclose(torch.ones(167))  # fitted, row-stochastic
    assert checkpoint["hyper_parameters"]["vocab_size"] == 167  # linked from the data module


def test_features_take_any_size_and_dtype():
    classifier = PokemonClassifier(feature_dim=48).eval()
    rgb = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8)
    features = classifier.features(rgb)
    assert features.shape == (2, 48)
    upscaled = rgb.repeat_interleave(5, 2).repeat_interleave(5, 3)  # pixel art shown at 100 x 100
    assert torch.allclose(classifier.features(upscaled), features, atol=1e-5)
    assert torch.allclose(classifier.features(rgb.float() / 255), features, atol=1e-5)
    assert classifier.features(torch.randint(0, 255, (1, 3, 299, 299), dtype=torch.uint8)).shape == (1, 48)


@pytest.mark.parametrize("kind", NEGATIVE_TYPES)
def test_negatives_keep_the_top_and_change_the_bottom(kind):
    images = read_images(DATA_DIR / "dev.txt")[:16]
    spoiled = Corruptor(240, 20, fit_bigram(images, 167))(images, kind, torch.Generator().manual_seed(0))
    assert spoiled.shape == images.shape and spoiled.dtype == torch.long
    assert torch.equal(spoiled[:, :240], images[:, :240])
    assert (spoiled[:, 240:] != images[:, 240:]).any(dim=1).float().mean() > 0.5
    assert 0 <= spoiled.min() and spoiled.max() < 167


def test_translate_fills_with_background():
    image = torch.arange(1, 401).view(1, 400)
    moved = translate(image.repeat(64, 1), 20, torch.Generator().manual_seed(0), max_shift=1)
    assert (moved == 0).any() and set(moved.unique().tolist()) <= set(range(401))


def test_unknown_negative_type_is_a_clear_error():
    result = run_script("train.py", "--config", str(CONFIG), "--model.init_args.negative_types=[blank,smudge]", check=False)
    assert result.returncode != 0
    assert "negative_types: unknown ['smudge']" in result.stderr

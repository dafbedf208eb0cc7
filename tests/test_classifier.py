"""The Pokémon judge: trained through train.py, self-contained checkpoints, made-up negatives."""

import pytest
import torch

from conftest import CLASSIFIER, DATA_DIR
from datamodules.negatives import NEGATIVE_TYPES, Corruptor, fit_bigram, translate
from datamodules.pixel_files import read_images, read_palette
from entry_points import assert_error, run
from lightning_modules import PokemonClassifier


def test_trained_classifier_prefers_real_images(classifier_ckpt, small_data):
    """The session's classifier (conftest: 120 steps through train.py and configs/classifier.yaml)."""
    classifier = PokemonClassifier.load_from_checkpoint(classifier_ckpt, map_location="cpu")
    dev = read_images(small_data / "dev.txt")
    corrupt = Corruptor(240, 20, fit_bigram(dev, 167))
    generator = torch.Generator().manual_seed(0)
    real = classifier.probability(dev)
    for kind in ("blank", "noise"):
        spoiled = classifier.probability(corrupt(dev, kind, generator))
        assert real.mean() > spoiled.mean() + 0.3, kind
        assert (real > 0.5).float().mean() > (spoiled > 0.5).float().mean(), kind


def test_checkpoint_is_self_contained(classifier_ckpt, small_data):
    checkpoint = torch.load(classifier_ckpt, weights_only=False)
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


def moved_by(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """A 20 x 20 image moved ``dy`` rows down and ``dx`` columns right, the uncovered pixels background (0)."""
    grid, out = image.view(20, 20), torch.zeros(20, 20, dtype=image.dtype)
    out[max(dy, 0) : 20 + min(dy, 0), max(dx, 0) : 20 + min(dx, 0)] = grid[
        max(-dy, 0) : 20 - max(dy, 0), max(-dx, 0) : 20 - max(dx, 0)
    ]
    return out.flatten()


def test_translate_moves_each_image_by_up_to_a_pixel_filling_with_background():
    image = torch.arange(1, 401).view(1, 400)  # every pixel a colour of its own, none the background
    moved = translate(image.repeat(64, 1), 20, torch.Generator().manual_seed(0), max_shift=1)
    shifts = {(dy, dx): moved_by(image[0], dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    seen = [next((shift for shift, expected in shifts.items() if torch.equal(row, expected)), None) for row in moved]
    assert None not in seen  # each image is the original moved by at most a pixel, filled with 0
    assert len(set(seen)) == 9  # 64 draws: every move, staying put included


def test_unknown_negative_type_is_a_clear_error():
    result = run(
        "train.py", "--config", str(CLASSIFIER), "--model.init_args.negative_types=[blank,smudge]", check=False
    )
    assert_error(result, "negative_types: unknown ['smudge']")

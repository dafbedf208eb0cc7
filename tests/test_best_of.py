"""Best-of-N decoding: N samples per prefix, the best kept by a reranker or the model's (contrast) likelihood."""

import shutil
from dataclasses import replace

import pytest
import torch

from checkpointing import load_pixel_lm
from conftest import predict
from datamodules.pixel_files import read_images, read_palette
from datamodules.submission import check
from entry_points import assert_error, run
from generation.decoding import Decoding
from tiny_models import tiny_model


def test_keeps_the_candidate_the_reranker_scores_highest():
    model = tiny_model()
    prefixes = torch.randint(0, 167, (3, 24))
    sampling = Decoding(do_sample=True, seed=5)
    # The same seed draws the same 4 candidates per prefix as sampling the repeated prefixes once.
    candidates = model.complete(prefixes.repeat_interleave(4, dim=0), sampling).view(3, 4, 40)
    model.reranker = lambda images: (images == 0).sum(dim=1).float()  # prefers the most background
    best = model.complete(prefixes, Decoding(do_sample=True, seed=5, best_of=4))
    expected = candidates[torch.arange(3), (candidates == 0).sum(dim=2).argmax(dim=1)]
    assert torch.equal(best, expected)
    assert "reranker" not in str(model.state_dict().keys())  # a judge never enters the model's checkpoints


def test_without_reranker_keeps_the_likeliest():
    model = tiny_model()
    prefixes = torch.randint(0, 167, (2, 24))
    candidates = model.complete(prefixes.repeat_interleave(5, dim=0), Decoding(do_sample=True, seed=1))
    with torch.no_grad():  # scored as complete() scores them: in eval mode, without dropout
        model.eval()
        likelihood = -model.token_losses(candidates)[:, 23:].mean(dim=1).view(2, 5)
    best = model.complete(prefixes, Decoding(do_sample=True, seed=1, best_of=5))
    assert torch.equal(best, candidates.view(2, 5, 40)[torch.arange(2), likelihood.argmax(dim=1)])


def test_contrast_subtracts_a_share_of_the_training_bigram():
    model = tiny_model()
    training = torch.randint(0, 167, (6, 40))
    training[:, 30:] = 0  # a bigram of these images finds runs of background likely
    model.use_training_images(training)
    prefixes = torch.randint(0, 167, (2, 24))
    candidates = model.complete(prefixes.repeat_interleave(6, dim=0), Decoding(do_sample=True, seed=3))
    with torch.no_grad():
        model.eval()
        likelihood = -model.token_losses(candidates)[:, 23:].mean(dim=1)
    pairs = torch.zeros(167, 167).index_put_(
        (training[:, :-1].flatten(), training[:, 1:].flatten()), torch.ones(6 * 39), accumulate=True
    )
    bigram = ((pairs + 0.1) / (pairs + 0.1).sum(dim=1, keepdim=True)).log()  # counts, smoothed by 0.1 as fit_bigram
    background = bigram[candidates[:, 23:-1], candidates[:, 24:]].mean(dim=1)
    for weight in (0.0, 0.5, 2.0):
        best = model.complete(prefixes, Decoding(do_sample=True, seed=3, best_of=6, contrast=weight))
        expected = (likelihood - weight * background).view(2, 6).argmax(dim=1)
        assert torch.equal(best, candidates.view(2, 6, 40)[torch.arange(2), expected]), weight


def test_contrast_without_training_images_is_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="decoding.contrast: .* call use_training_images first"):
        model.complete(torch.zeros(1, 24, dtype=torch.long), Decoding(do_sample=True, best_of=2, contrast=0.5))


def blurred(image: torch.Tensor, palette: torch.Tensor, width: int = 20) -> torch.Tensor:
    """An image's RGB colours, each the mean of its 3 x 3 neighbourhood inside the image, as one vector."""
    colours = palette[image].float().view(-1, width, 3)
    rows = len(colours)
    out = torch.stack([
        torch.stack([colours[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].reshape(-1, 3).mean(dim=0) for c in range(width)])
        for r in range(rows)
    ])  # fmt: skip
    return out.flatten()


def test_consensus_keeps_the_most_typical_of_the_best_scored():
    model = tiny_model()
    palette = torch.randint(0, 256, (167, 3), dtype=torch.uint8)
    model.use_palette(palette)
    prefixes = torch.randint(0, 167, (2, 24))
    candidates = model.complete(prefixes.repeat_interleave(6, dim=0), Decoding(do_sample=True, seed=7)).view(2, 6, 40)
    weights = torch.randn(16)
    model.reranker = lambda images: images[:, 24:].float() @ weights  # some fixed score, no ties
    for k in (1, 3, 6):
        kept = model.complete(prefixes, Decoding(do_sample=True, seed=7, best_of=6, consensus=k))
        for b in range(2):
            scores = candidates[b, :, 24:].float() @ weights
            vectors = torch.stack([blurred(image, palette) for image in candidates[b]])
            typicality = torch.cdist(vectors, vectors).mean(dim=1)  # mean distance to the 6 candidates
            best = scores.argsort(descending=True)[:k]
            assert torch.equal(kept[b], candidates[b, best[typicality[best].argmin()]]), (k, b)
    # Of all N, the medoid: whatever the reranker says.
    medoid = model.complete(prefixes, Decoding(do_sample=True, seed=7, best_of=6, consensus=6))
    model.reranker = lambda images: -(images[:, 24:].float() @ weights)
    assert torch.equal(model.complete(prefixes, Decoding(do_sample=True, seed=7, best_of=6, consensus=6)), medoid)


def test_consensus_without_a_palette_is_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="decoding.consensus: .* call use_palette first"):
        model.complete(torch.zeros(1, 24, dtype=torch.long), Decoding(do_sample=True, best_of=2, consensus=2))


@pytest.mark.parametrize("setting, value", [("contrast", 0.5), ("consensus", 2)])
def test_predict_best_of_rules_take_the_data_modules_images_and_palette(
    setting, value, trained, lm_ckpt, small_data, tmp_path
):
    """predict.py fits contrast's bigram on the training split and compares consensus by the data's palette,
    and writes a valid submission."""
    output = tmp_path / f"{setting}.txt"
    best_of = ("--model.init_args.decoding.do_sample=true", "--model.init_args.decoding.best_of=3")
    predict(trained, small_data, output, *best_of, f"--model.init_args.decoding.{setting}={value}")
    written = check(output, small_data / "test.txt")
    assert written.shape == (16, 400)
    # The same choice in-process, with the bigram of the same training split and the same colours.
    model = load_pixel_lm(lm_ckpt)
    model.use_training_images(read_images(small_data / "train.txt", 400))
    model.use_palette(read_palette(small_data / "colormap.txt"))
    decoding = replace(model.decoding, do_sample=True, best_of=3, **{setting: value})
    assert torch.equal(written, model.complete(read_images(small_data / "test.txt", 240), decoding))


def test_reranker_by_its_runs_folder_is_the_newest_best_ckpt(trained, classifier_ckpt, small_data, tmp_path):
    runs = tmp_path / "runs" / "classifier"
    for version in ("version_1", "version_2"):  # version_2 (the newest) holds only a last.ckpt
        (runs / version / "checkpoints").mkdir(parents=True)
    shutil.copy(classifier_ckpt, runs / "version_1" / "checkpoints" / "best.ckpt")
    shutil.copy(classifier_ckpt, runs / "version_2" / "checkpoints" / "last.ckpt")
    common = (
        "--trainer.default_root_dir", str(trained), "--data.data_dir", str(small_data),
        "--model.init_args.decoding.do_sample=true", "--model.init_args.decoding.best_of=3",
    )  # fmt: skip
    by_file, by_folder = tmp_path / "by_file.txt", tmp_path / "by_folder.txt"
    run("predict.py", *common, "--reranker", str(classifier_ckpt), "--output", str(by_file))
    result = run("predict.py", *common, "--reranker", str(runs), "--output", str(by_folder))
    assert f"Reranking with {runs / 'version_1' / 'checkpoints' / 'best.ckpt'}" in result.stdout
    assert by_folder.read_bytes() == by_file.read_bytes()

    empty = tmp_path / "no_classifier"
    empty.mkdir()
    result = run("predict.py", *common, "--reranker", str(empty), "--output", str(tmp_path / "x.txt"), check=False)
    assert assert_error(result) == (
        f"error: --reranker: no checkpoints/best.ckpt in any run under {empty} "
        "(train one: python train.py --config configs/classifier.yaml)"
    )
    assert not (tmp_path / "x.txt").exists()

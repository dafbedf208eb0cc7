"""predict.py and the submission checker, as a user runs them."""

import pytest
import torch
from PIL import Image

from conftest import DATA_DIR, TINY, predict
from datamodules.pixel_files import read_images, read_palette
from datamodules.submission import check
from entry_points import run

# Greedy decoding, whatever the config says; sampling tests switch it on.
GREEDY = "--model.init_args.decoding.do_sample=false"
SAMPLE = ("--model.init_args.decoding.do_sample=true", "--model.init_args.decoding.top_k=20")


def assert_png_of(path, count):
    """A PNG grid of ``count`` images, 10 to a row, with the red prefix line at pixel row 12 of each."""
    picture = Image.open(path).convert("RGB")
    rows = -(-count // 10)
    assert picture.size == (10 * 82 + 2, rows * 82 + 2)  # 20 px x 4 + 2 px gap per cell
    assert picture.getpixel((2, 2 + 12 * 4)) == (255, 0, 0)


def test_writes_submission_and_png_and_greedy_repeats(prediction, trained, small_data, tmp_path):
    output = prediction  # the session's greedy predict.py run of the tiny model
    images = check(output, small_data / "test.txt")  # prefixes equal test.txt, 400 ints in [0, 166]
    prefixes = read_images(small_data / "test.txt")
    assert images.shape == (16, 400) and torch.equal(images[:, :240], prefixes)
    assert_png_of(output.with_suffix(".png"), 16)
    picture = Image.open(output.with_suffix(".png")).convert("RGB")
    palette = read_palette(small_data / "colormap.txt")
    assert picture.getpixel((2 + 4 * 3, 2 + 4 * 1)) == tuple(palette[images[0, 1 * 20 + 3]].tolist())  # pixel (1, 3)
    printed = (output.parent / "stdout.txt").read_text()
    assert str(output) in printed and str(output.with_suffix(".png")) in printed
    predict(trained, small_data, tmp_path / "again.txt", GREEDY)
    assert (tmp_path / "again.txt").read_bytes() == output.read_bytes()


def test_sampling_same_seed_same_file(prediction, trained, small_data, tmp_path):
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    predict(trained, small_data, first, *SAMPLE, "--model.init_args.decoding.seed=3")
    predict(trained, small_data, second, *SAMPLE, "--model.init_args.decoding.seed=3")
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != prediction.read_bytes()  # the sampling options did reach generate()
    check(first, small_data / "test.txt")


def test_real_test_split_gives_80_by_400(trained, tmp_path):
    output = tmp_path / "submission.txt"
    predict(trained, DATA_DIR, output, *SAMPLE, "--data.eval_batch_size=32")  # 3 batches, the last one short
    images = check(output, DATA_DIR / "test.txt")
    assert images.shape == (80, 400)
    assert int(images.min()) >= 0 and int(images.max()) <= 166
    assert len(output.read_text().splitlines()) == 80
    assert_png_of(tmp_path / "submission.png", 80)


def test_dev_split(trained, small_data, tmp_path):
    output = tmp_path / "dev.txt"
    predict(trained, small_data, output, GREEDY, "--split=dev")
    images = read_images(output, 400, 167)
    assert torch.equal(images[:, :240], read_images(small_data / "dev.txt")[:, :240])


def test_train_split_completes_every_training_prefix(trained, small_data, tmp_path):
    """What configs/judge.yaml's negatives_file is made of: completions of the training prefixes."""
    output = tmp_path / "negatives.txt"
    predict(trained, small_data, output, *SAMPLE, "--split=train")
    images = read_images(output, 400, 167)
    train = read_images(small_data / "train.txt")
    assert images.shape == train.shape and torch.equal(images[:, :240], train[:, :240])
    assert not torch.equal(images, train)  # generated bottoms, not the real ones


def test_new_pokemon_from_nothing(trained, small_data, tmp_path):
    """--split new: brand-new images, each from one first pixel drawn as the training images start."""
    result = run(
        "predict.py", "--config", str(TINY), "--trainer.default_root_dir", str(trained),
        "--data.data_dir", str(small_data), *SAMPLE, "--split=new", "--data.num_new=12", cwd=tmp_path,
    )  # fmt: skip
    output = tmp_path / "new_pokemon.txt"  # the default name for new Pokémon
    assert "Wrote 12 new Pokémon" in result.stdout
    images = read_images(output, 400, 167)
    assert images.shape == (12, 400)
    first_pixels = set(read_images(small_data / "train.txt")[:, 0].tolist())
    assert set(images[:, 0].tolist()) <= first_pixels  # only colours a training image starts with
    assert len({tuple(row) for row in images.tolist()}) == 12  # sampled: every one different
    picture = Image.open(tmp_path / "new_pokemon.png").convert("RGB")
    assert picture.size == (10 * 82 + 2, 2 * 82 + 2)
    palette = read_palette(small_data / "colormap.txt")
    assert picture.getpixel((2, 2 + 12 * 4)) == tuple(palette[images[0, 12 * 20]].tolist())  # no red prefix line
    again = tmp_path / "again.txt"
    predict(trained, small_data, again, *SAMPLE, "--split=new", "--data.num_new=12")
    assert again.read_bytes() == output.read_bytes()  # same seeds, same new Pokémon
    other = tmp_path / "other.txt"
    predict(trained, small_data, other, *SAMPLE, "--split=new", "--data.num_new=12", "--data.new_seed=1")
    assert other.read_bytes() != output.read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--ckpt_path", "missing.ckpt"), "missing.ckpt does not exist"),
        # Crashes inside generate(), after the checkpoint has loaded.
        (("--model.init_args.decoding.do_sample=true", "--model.init_args.decoding.temperature=-1"), "temperature"),
    ],
    ids=["bad-ckpt-path", "crash-while-predicting"],
)
def test_failed_prediction_leaves_earlier_files(trained, small_data, tmp_path, args, message):
    output, picture = tmp_path / "submission.txt", tmp_path / "submission.png"
    output.write_text("earlier submission\n")
    picture.write_bytes(b"earlier picture")
    result = predict(trained, small_data, output, *args, check=False)
    assert result.returncode != 0 and message in result.stderr
    assert output.read_text() == "earlier submission\n" and picture.read_bytes() == b"earlier picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.png", "submission.txt"]  # no temporaries


def broken(lines: list[str], how: str) -> list[str]:
    first = lines[0].split()
    if how == "79 lines":
        return lines[:79]
    if how == "399 ints":
        return [" ".join(first[:399]), *lines[1:]]
    if how == "value 167":
        return [" ".join(first[:300] + ["167"] + first[301:]), *lines[1:]]
    if how == "changed prefix":
        return [" ".join(first[:5] + [str((int(first[5]) + 1) % 167)] + first[6:]), *lines[1:]]
    raise ValueError(how)


@pytest.mark.parametrize(
    "how, message",
    [
        ("79 lines", "expected 80 lines (one per test image), got 79"),
        ("399 ints", ":1: expected 400 ints, got 399"),
        ("value 167", ":1: value 167 at position 300 is outside the palette [0, 166]"),
        ("changed prefix", ":1: the first 240 values must be the given prefix, but position 5 is"),
    ],
)
def test_checker_names_the_problem(tmp_path, how, message):
    # The real dev images are a valid "submission" for their own first 240 pixels.
    prefixes = tmp_path / "prefixes.txt"
    dev = (DATA_DIR / "dev.txt").read_text().splitlines()
    prefixes.write_text("".join(" ".join(line.split()[:240]) + "\n" for line in dev))
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("\n".join(dev) + "\n")
    bad.write_text("\n".join(broken(dev, how)) + "\n")
    ok = run("-m", "datamodules.submission", "check", str(good), "--prefixes", str(prefixes))
    assert ok.stdout.startswith("OK")
    result = run("-m", "datamodules.submission", "check", str(bad), "--prefixes", str(prefixes), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"NOT OK: {bad}") and message in result.stderr

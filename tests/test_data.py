"""The data module: what it serves, the hub path, and its errors on bad files."""

import gzip
import hashlib
import os
import re
import shutil
import sys

import pytest
import torch

from conftest import DATA_DIR, SHIPPED_DATA
from datamodules import PixelFormatError, PokemonDataModule


def loaded(**kwargs) -> PokemonDataModule:
    data = PokemonDataModule(**kwargs)
    data.setup("fit")
    return data


def test_serves_the_three_splits():
    data = loaded(data_dir=str(DATA_DIR), batch_size=16)
    assert (data.vocab_size, data.seq_len) == (167, 400)
    assert data.palette[0].tolist() == [255, 255, 255]  # index 0 is the white background
    train = next(iter(data.train_dataloader()))
    assert train.shape == (16, 400) and train.dtype == torch.long
    (dev,) = list(data.val_dataloader())
    assert dev.shape == (80, 400)
    (indices, prefixes) = next(iter(data.predict_dataloader()))
    assert prefixes.shape == (80, 240) and indices.tolist() == list(range(80))
    first_test = [int(v) for v in (DATA_DIR / "test.txt").read_text().split("\n")[0].split()]
    assert prefixes[0].tolist() == first_test


def test_hflip_mirrors_rows():
    data = loaded(data_dir=str(DATA_DIR), hflip=True)
    loader = data.train_dataloader()
    image = data.splits["train"][3]
    mirrored = image.view(20, 20).flip(1).reshape(-1)
    seen = set()
    for epoch in range(12):  # the mirroring is drawn per (seed, epoch, index)
        loader.sampler.set_epoch(epoch)
        seen |= {
            tuple(row.tolist())
            for batch in loader
            for row in batch
            if row.tolist() in (image.tolist(), mirrored.tolist())
        }
    assert seen == {tuple(image.tolist()), tuple(mirrored.tolist())}


def test_shift_moves_images_by_a_pixel_filling_with_the_background():
    data = loaded(data_dir=str(DATA_DIR), shift=1)
    loader = data.train_dataloader()
    originals = data.splits["train"].view(-1, 20, 20)
    moves, served = set(), 0
    for epoch in range(3):
        loader.sampler.set_epoch(epoch)
        batches = torch.cat(list(loader)).view(-1, 20, 20)
        keys = loader.sampler.order(epoch)
        for image, (index, mirror, dy, dx) in zip(batches, keys, strict=True):
            assert not mirror and -1 <= dy <= 1 and -1 <= dx <= 1
            original = originals[index]
            # What stays inside the frame is the original, moved; what moved in is the top-left colour.
            kept = image[max(dy, 0) : 20 + min(dy, 0), max(dx, 0) : 20 + min(dx, 0)]
            assert torch.equal(kept, original[max(-dy, 0) : 20 - max(dy, 0), max(-dx, 0) : 20 - max(dx, 0)])
            if dy == 1:
                assert (image[0] == original[0, 0]).all()
            if dx == -1:
                assert (image[:, -1] == original[0, 0]).all()
            moves.add((dy, dx))
            served += 1
    assert served == 3 * len(originals)
    assert len(moves) == 9  # every move of up to a pixel, staying put included


def test_no_shift_keeps_the_order_and_mirroring_of_before():
    data = loaded(data_dir=str(DATA_DIR), hflip=True)
    order = data.train_dataloader().sampler.order(4)
    assert {(dy, dx) for _, _, dy, dx in order} == {(0, 0)}
    generator = torch.Generator().manual_seed(0 * 1_000_003 + 4)  # the draws as they were without shifts
    indices = torch.randperm(632, generator=generator)
    mirror = torch.rand(632, generator=generator) < 0.5
    assert [(i, m) for i, m, _, _ in order] == [(i, bool(mirror[i])) for i in indices.tolist()]


@pytest.mark.parametrize("shift", [-1, 20])
def test_shift_out_of_range_is_refused(shift):
    with pytest.raises(ValueError, match="data.shift"):
        PokemonDataModule(data_dir=str(DATA_DIR), shift=shift)


def test_hub_copy_gives_the_same_tensors(tmp_path):
    datasets = pytest.importorskip("datasets")

    def split(name):
        rows = (DATA_DIR / f"{name}.txt").read_text().splitlines()
        return datasets.Dataset.from_dict({"pixel_color": [[int(v) for v in row.split()] for row in rows]})

    colours = [[int(v) for v in row.split()] for row in (DATA_DIR / "colormap.txt").read_text().splitlines()]
    datasets.DatasetDict({s: split(s) for s in ("train", "dev", "test")}).save_to_disk(tmp_path / "pokemon")
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"color": colours})}).save_to_disk(tmp_path / "colors")

    hub = PokemonDataModule(hub_dataset=str(tmp_path / "pokemon"), hub_palette=str(tmp_path / "colors"))
    hub.prepare_data()
    hub.setup("fit")
    local = loaded(data_dir=str(DATA_DIR))
    assert torch.equal(hub.palette, local.palette)
    for name in ("train", "dev", "test"):
        assert torch.equal(hub.splits[name], local.splits[name])


def test_hub_without_datasets_says_which_requirements_file_installs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail, as when not installed
    hub = PokemonDataModule(hub_dataset="user/pokemon", hub_palette="user/colors")
    with pytest.raises(ImportError, match=r"`datasets` package: pip install -r requirements-hub.txt"):
        hub.prepare_data()


@pytest.fixture
def data_copy(tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(DATA_DIR, folder)
    return folder


def corrupt(path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


FULL = " ".join(["0"] * 400)
BAD_LINES = {
    "short line": ("train.txt", 5, " ".join(["0"] * 399), "train.txt:5: expected 400 ints, got 399"),
    "not an int": ("dev.txt", 7, FULL.replace("0", "x", 1), "dev.txt:7: not an integer: 'x'"),
    "out of palette": ("train.txt", 2, FULL[:-1] + "167", "train.txt:2: value 167 at position 399 is outside the palette [0, 166]"),
    "negative": ("test.txt", 3, "-1" + " 0" * 239, "test.txt:3: not an integer: '-1'"),
    "plus sign": ("train.txt", 4, "+5" + " 0" * 399, "train.txt:4: not an integer: '+5'"),
    "underscore": ("dev.txt", 2, "1_2" + " 0" * 399, "dev.txt:2: not an integer: '1_2'"),
    "non-ASCII digit": ("train.txt", 6, "\u0663" + " 0" * 399, "train.txt:6: not an integer: '\u0663'"),
    "test too long": ("test.txt", 1, FULL, "test.txt:1: expected 240 ints, got 400"),
    "bad colour": ("colormap.txt", 4, "12 300 7", "colormap.txt:4: colour [12, 300, 7] is not three ints in 0..255"),
    "colour of two": ("colormap.txt", 9, "12 30", "colormap.txt:9: expected 3 ints, got 2"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_LINES, ids=str)
def test_bad_line_names_file_line_and_problem(data_copy, case):
    name, line, text, message = BAD_LINES[case]
    corrupt(data_copy / name, line, text)
    with pytest.raises(PixelFormatError, match="^" + re.escape(f"{data_copy}/{message}")):
        loaded(data_dir=str(data_copy))


def test_palette_of_wrong_size(data_copy):
    path = data_copy / "colormap.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:100]))
    with pytest.raises(PixelFormatError, match="colormap.txt: expected 167 colours, got 100"):
        loaded(data_dir=str(data_copy))


def test_missing_and_empty_files(data_copy):
    (data_copy / "dev.txt").unlink()
    with pytest.raises(PixelFormatError, match="dev.txt: file not found"):
        loaded(data_dir=str(data_copy))
    (data_copy / "dev.txt").write_text("")
    with pytest.raises(PixelFormatError, match=r"dev.txt: no images \(the file is empty\)"):
        loaded(data_dir=str(data_copy))


def test_atomic_write_keeps_usual_permissions(tmp_path):
    from files.atomic_write import atomic_write_bytes

    mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "submission.txt", b"1 2 3\n")
    finally:
        os.umask(mask)
    assert (tmp_path / "submission.txt").stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
    assert [p.name for p in tmp_path.iterdir()] == ["submission.txt"]  # no temporary file left behind


def test_crlf_and_trailing_spaces_are_fine(data_copy):
    path = data_copy / "dev.txt"
    path.write_bytes(b"".join(line.rstrip(b"\n") + b"  \r\n" for line in path.read_bytes().splitlines(keepends=True)))
    assert torch.equal(loaded(data_dir=str(data_copy)).splits["dev"], loaded(data_dir=str(DATA_DIR)).splits["dev"])


def test_file_that_is_not_utf8_names_its_line(data_copy):
    path = data_copy / "train.txt"
    lines = path.read_bytes().split(b"\n")
    lines[8] = b"0 \xff\xfe 0"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(PixelFormatError, match=r"train.txt:9: not UTF-8 text \(byte 0xff\)"):
        loaded(data_dir=str(data_copy))


def test_default_is_the_shipped_course_split():
    data = loaded()  # no data_dir, no network, no ../shared
    assert data.data_dir == SHIPPED_DATA
    assert [len(data.splits[name]) for name in ("train", "dev", "test")] == [632, 80, 80]
    assert data.splits["test"].shape == (80, 240)  # the shipped copy holds only the given pixels of test
    assert data.vocab_size == 167


# SHA-256 of the course's files as the course hands them out (measured on its copy beside the checkout,
# 2026-12-04): the shipped .gz files must unpack to exactly these bytes.
COURSE_FILES = {
    "train.txt": "9414f08ba33bc16c55bc5faa7c4b6fb3c8e1eaecc1b7b84957310448d17e4c20",
    "dev.txt": "e433324b9bf95a4e275a1957f61ec6bfb0cadca4fd98609a8ab4b2b5652a1b19",
    "test.txt": "3656f8297b13c886ed198af3986d36d3a35ca6fecdaeee6d956a93770c36158f",
    "colormap.txt": "3a5cbb383f774ce963b680d26a8f6097ef7c7e28b45e72dae725a6b7c89b72b6",
}


def test_shipped_copy_is_the_course_split_byte_for_byte():
    for name, sha256 in COURSE_FILES.items():
        shipped = gzip.decompress((SHIPPED_DATA / f"{name}.gz").read_bytes())
        assert hashlib.sha256(shipped).hexdigest() == sha256, name


def test_gzipped_files_are_read_like_plain_ones(data_copy):
    for name in COURSE_FILES:
        path = data_copy / name
        path.with_name(name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    packed = loaded(data_dir=str(data_copy))
    plain = loaded(data_dir=str(DATA_DIR))
    for name in ("train", "dev", "test"):
        assert torch.equal(packed.splits[name], plain.splits[name])

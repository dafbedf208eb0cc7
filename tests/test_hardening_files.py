"""Issue 35, files: outputs only as regular files and never onto the run's inputs; reads that never wait on
a FIFO, never take memory a file's shape does not allow, and end in one line for any file a user or a
hostile sharer can make."""

import gzip
import os
import re
import shutil
import socket
import stat
import threading
import tracemalloc
from pathlib import Path

import pytest

import predict
from conftest import DATA_DIR, TINY
from datamodules import PixelFormatError
from datamodules.pixel_files import MAX_IMAGES, read_images, read_palette
from datamodules.submission import main as checker
from entry_points import exits_with_one_line
from files.atomic_write import WriteError, atomic_write_bytes, check_writable


@pytest.fixture
def data(tmp_path, small_data) -> Path:
    """A copy of the small data set that a test may break or try to overwrite."""
    return Path(shutil.copytree(small_data, tmp_path / "data"))


@pytest.fixture
def runs(tmp_path, trained) -> Path:
    """A copy of the tiny trained run, so a test that fails cannot overwrite the shared checkpoint."""
    return Path(shutil.copytree(trained, tmp_path / "runs"))


def predict_error(capsys, runs: Path, data: Path, output: Path, *args: str) -> str:
    """``predict.py`` in this process; its one error line (status 2)."""
    command = [
        "--config", str(TINY), "--trainer.default_root_dir", str(runs), "--data.data_dir", str(data),
        "--output", str(output), "--model.init_args.decoding.do_sample=false", *args,
    ]  # fmt: skip
    return exits_with_one_line(capsys, predict.main, command)


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def make_node(path: Path, kind: str) -> None:
    """A FIFO, a socket, a folder or (as root) a character device like /dev/full at ``path``."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))  # the node stays after the socket closes
        server.close()
    elif kind == "folder":
        path.mkdir()
    else:
        try:
            os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 7))  # what /dev/full is
        except PermissionError:
            pytest.skip("making a device node needs root")


@pytest.mark.parametrize(
    "kind, what",
    [
        ("device", "is a character device, not a regular file"),
        ("fifo", "is a FIFO (named pipe), not a regular file"),
        ("socket", "is a socket, not a regular file"),
        ("folder", "is a folder; give a file name"),
    ],
)
def test_a_node_that_is_no_regular_file_is_never_replaced(tmp_path, kind, what):
    target = tmp_path / "out.txt"
    make_node(target, kind)
    mode = os.lstat(target).st_mode
    for write in (check_writable, lambda path: atomic_write_bytes(path, b"results\n")):  # --output, --json_out
        with pytest.raises(WriteError, match="^" + re.escape(f"{target} {what}")):
            write(target)
    assert os.lstat(target).st_mode == mode  # still the node it was, not a text file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary left


def test_predict_output_onto_a_device_is_refused_before_the_work(capsys, runs, data, tmp_path):
    target = tmp_path / "submission.txt"
    make_node(target, "device" if os.geteuid() == 0 else "fifo")
    message = predict_error(capsys, runs, data, target)
    assert message.startswith(f"error: {target} is a ") and "not a regular file" in message
    assert not stat.S_ISREG(os.lstat(target).st_mode)


def test_a_link_is_replaced_never_written_through(tmp_path):
    """A link to a regular file becomes the new file and its target keeps its bytes; a link to a FIFO or a
    device (``/dev/stdout`` is a link) is refused like the node itself."""
    kept = tmp_path / "elsewhere.txt"
    kept.write_bytes(b"someone else's file\n")
    link = tmp_path / "submission.txt"
    link.symlink_to(kept)
    atomic_write_bytes(link, b"results\n")
    assert not link.is_symlink() and link.read_bytes() == b"results\n"
    assert kept.read_bytes() == b"someone else's file\n"
    make_node(tmp_path / "pipe", "fifo")
    (tmp_path / "to_pipe.txt").symlink_to(tmp_path / "pipe")
    with pytest.raises(WriteError, match=re.escape(f"to_pipe.txt is a link to {tmp_path / 'pipe'}, which is a FIFO")):
        atomic_write_bytes(tmp_path / "to_pipe.txt", b"results\n")
    assert (tmp_path / "to_pipe.txt").is_symlink() and stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)


@pytest.mark.parametrize(
    "output, args",
    [
        ("{data}/test.txt", ()),  # the prefixes being completed
        ("{data}/../data/train.txt", ()),  # the same file by another name
        ("{link}", ()),  # a link to the palette
        ("{data}/dev.txt", ("--split", "dev")),  # the plain twin of a gzipped dev.txt.gz: it would be read instead
    ],
    ids=["test-prefixes", "dotdot", "symlink", "plain-twin"],
)
def test_predict_never_writes_onto_its_own_data(capsys, runs, data, tmp_path, output, args):
    (tmp_path / "link.txt").symlink_to(data / "colormap.txt")
    (data / "dev.txt").write_bytes(gzip.compress((data / "dev.txt").read_bytes()))
    (data / "dev.txt").rename(data / "dev.txt.gz")
    before = contents(data)
    output = Path(output.format(data=data, link=tmp_path / "link.txt"))
    message = predict_error(capsys, runs, data, output, *args)
    assert message.startswith(f"error: {output} is an input of this run")
    assert contents(data) == before  # every input as it was, and no plain dev.txt beside dev.txt.gz


def test_predict_never_writes_onto_its_checkpoint(capsys, runs, data):
    checkpoint = runs / "version_0" / "checkpoints" / "best.ckpt"
    before = checkpoint.read_bytes()
    message = predict_error(capsys, runs, data, checkpoint, "--ckpt_path", str(checkpoint))
    assert message.startswith(f"error: {checkpoint} is an input of this run")
    assert checkpoint.read_bytes() == before


def test_a_plain_file_beside_its_gzipped_twin_is_refused(data, capsys, runs, tmp_path):
    (data / "dev.txt.gz").write_bytes(gzip.compress((data / "dev.txt").read_bytes()))
    both = f"{data / 'dev.txt'} and {data / 'dev.txt.gz'} both exist"
    with pytest.raises(PixelFormatError, match="^" + re.escape(both)):
        read_images(data / "dev.txt", 400, 167)
    message = predict_error(capsys, runs, data, tmp_path / "submission.txt")
    assert message == f"error: {both}, and either could be the data: remove or rename the one that is not"


def finishes(read, seconds: float = 20) -> BaseException | None:
    """What ``read()`` raised, failing the test if it is still waiting after ``seconds`` (a FIFO's open blocks)."""
    raised = []

    def run():
        try:
            read()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the read waits on the FIFO"
    return raised[0] if raised else None


@pytest.mark.parametrize("name", ["train.txt", "colormap.txt", "submission.txt"])
def test_no_read_waits_on_a_fifo(data, name):
    fifo = data / name
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    read = (lambda: read_palette(fifo, 167)) if name == "colormap.txt" else (lambda: read_images(fifo, 400, 167))
    error = finishes(read)
    assert isinstance(error, PixelFormatError)
    assert str(error) == f"{fifo}: is a FIFO (named pipe), not a regular file; data is only read from regular files"


def test_a_gzip_bomb_fails_on_its_first_line_before_taking_the_memory(data):
    """20 MB of one line, 20 kB gzipped: the reader stops after the bytes 400 numbers can take."""
    (data / "train.txt").unlink()
    (data / "train.txt.gz").write_bytes(gzip.compress(b"1 " * 10_000_000 + b"\n", 9))
    tracemalloc.start()
    try:
        with pytest.raises(PixelFormatError, match=r"train.txt.gz:1: line longer than \d+ bytes"):
            read_images(data / "train.txt", 400, 167)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # read as it was: 40 MB of bytes and a list of 10 million tokens


def test_a_file_of_too_many_lines_is_refused(tmp_path):
    path = tmp_path / "many.txt"
    path.write_bytes(b"0\n" * (MAX_IMAGES + 1))
    with pytest.raises(PixelFormatError, match="^" + re.escape(f"{path}: more than {MAX_IMAGES} lines")):
        read_images(path, 1, 167)


GOOD_PALETTE = "255 255 255\n0 0 0\n"


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("colormap.txt", ("1" * 5000 + " 0 0\n").encode(), "colormap.txt:1: line longer than"),
        ("colormap.txt", f"{GOOD_PALETTE}{'9' * 25} 0 0\n".encode(), "colormap.txt:3: a number of 25 digits: '99999"),
        ("colormap.txt.gz", gzip.compress(GOOD_PALETTE.encode())[:-12], "colormap.txt.gz: not a readable gzip file"),
        (
            "colormap.txt.gz",
            gzip.compress(GOOD_PALETTE.encode())[:10] + bytes(range(200)),
            "colormap.txt.gz: not a readable gzip file",
        ),  # fmt: skip
        ("colormap.txt.gz", GOOD_PALETTE.encode(), "colormap.txt.gz: not a readable gzip file"),
    ],
    ids=["5000-digits", "25-digits", "cut-gzip", "zlib-error", "not-gzip"],
)
def test_hostile_palette_is_one_line(tmp_path, name, raw, message):
    (tmp_path / name).write_bytes(raw)
    with pytest.raises(PixelFormatError) as error:
        read_palette(tmp_path / "colormap.txt")
    assert message in str(error.value) and "\n" not in str(error.value) and len(str(error.value)) < 300


def test_corrupt_gzip_through_predict_is_one_line(capsys, runs, data, tmp_path):
    (data / "train.txt").unlink()
    (data / "train.txt.gz").write_bytes(gzip.compress(b"0 " * 400 + b"\n")[:10] + bytes(range(100)))
    message = predict_error(capsys, runs, data, tmp_path / "submission.txt")
    assert message.startswith(f"error: {data / 'train.txt.gz'}: not a readable gzip file")


def check(capsys, *args: str) -> tuple[int, str]:
    """``python -m datamodules.submission check ARGS`` in this process: its status and its stderr."""
    status = checker(["check", *map(str, args)])
    return status, capsys.readouterr().err


@pytest.fixture
def prefixes(tmp_path) -> Path:
    """The first 240 pixels of the dev images, for which the dev images are a valid submission."""
    path = tmp_path / "prefixes.txt"
    dev = (DATA_DIR / "dev.txt").read_text().splitlines()
    path.write_text("".join(" ".join(line.split()[:240]) + "\n" for line in dev))
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: os.mkfifo(path), "is a FIFO (named pipe), not a regular file"),
        (lambda path: path.mkdir(), "is a folder, not a data file"),
        (lambda path: path.write_text("7" * 5000 + "\n"), ":1: line longer than 3264 bytes"),
        (
            lambda path: path.write_bytes(gzip.compress((DATA_DIR / "dev.txt").read_bytes())[:200]),
            "not a readable gzip file",
        ),
    ],
    ids=["fifo", "folder", "5000-digits", "cut-gzip"],
)
def test_checker_says_not_ok_in_one_line_for_a_hostile_submission(capsys, tmp_path, prefixes, make, message):
    submission = tmp_path / ("submission.txt.gz" if "gzip" in message else "submission.txt")
    make(submission)
    outcome = []
    assert finishes(lambda: outcome.append(check(capsys, submission, "--prefixes", prefixes))) is None
    status, err = outcome[0]
    assert status == 1 and err.startswith(f"NOT OK: {submission}") and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (("--seq_len", "0"), "error: --seq_len: must be 1 to 65536, got 0"),
        (("--seq_len", "100"), "its prefixes hold 240 ints, more than --seq_len 100"),
        (("--num_colours", "0"), "error: --num_colours: must be 1 to 16777216, got 0"),
        (("--prefixes", "{huge}"), "error: --prefixes: {huge}:2: a number of 5000 digits"),
        (("--prefixes", "{fifo}"), "error: --prefixes: {fifo}: is a FIFO (named pipe)"),
    ],
    ids=["seq_len-0", "prefixes-longer-than-images", "num_colours-0", "huge-number", "fifo"],
)
def test_checker_errors_in_what_it_checks_against_are_status_2(capsys, tmp_path, prefixes, args, message):
    submission = tmp_path / "submission.txt"
    submission.write_text((DATA_DIR / "dev.txt").read_text())
    huge, fifo = tmp_path / "huge.txt", tmp_path / "fifo.txt"
    huge.write_text("0 1\n1 " + "2" * 5000 + "\n")
    os.mkfifo(fifo)
    args = [arg.format(huge=huge, fifo=fifo) for arg in args]
    status, err = check(capsys, submission, "--prefixes", prefixes, *args)
    assert status == 2 and message.format(huge=huge, fifo=fifo) in err and err.count("\n") == 1, err

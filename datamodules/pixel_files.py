"""Reading, checking and writing the plain-text pixel formats.

One image per line, its palette indices separated by spaces; a palette is one
"R G B" line per colour. Every reader checks what it reads and raises a
:class:`PixelFormatError` naming the file, the line and the problem, because a
shape error deep inside a training step tells the user nothing. Numbers are
plain ASCII decimal digits, as in the course's files (Python's ``int`` would
also take ``+5``, ``1_2`` and non-ASCII digits); CRLF line ends and extra
spaces are fine. A file ``NAME`` may also be stored gzipped as ``NAME.gz``, but
not both: which one holds the data would be a guess.

Files are read as streams with bounds taken from the shape they must have (a
line of 400 numbers cannot be 100 MB long; a file holds at most
:data:`MAX_IMAGES` lines), so a hostile or broken file, a gzip bomb included,
fails with one line before it takes the memory, and only regular files are
opened: a FIFO would make the reader wait forever.
"""

import gzip
import os
import stat
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import torch

from files.atomic_write import atomic_write_bytes

# The course's split (train, dev, test prefixes, palette), gzipped, as the project ships it.
SHIPPED_DATA = Path(__file__).resolve().parent.parent / "data" / "pokemon"


# Lines one file may hold: the course's largest has 632; 100 000 images of 400 pixels take about 620 MB to read.
MAX_IMAGES = 100_000
# Bytes a number may take on a line, its separator included: 3 digits and a space, with room for extra spaces.
BYTES_PER_NUMBER = 8
# Numbers a line may hold when the reader is not told how many (a file of prefixes): a 256 x 256 image.
MAX_NUMBERS = 65_536
# Digits a number may have: int64 holds 18 of them; any more is no palette index or colour.
MAX_DIGITS = 18


class PixelFormatError(ValueError):
    """Malformed pixel or palette data; the message names the source, line and problem."""


def parse_rows(
    rows: Iterable[Sequence[int] | str],
    source: str,
    length: int | None,
    num_colours: int | None,
) -> torch.Tensor:
    """Checks rows of palette indices and stacks them into a ``(N, length)`` long tensor.

    Args:
        rows: Lines of space-separated ints, or sequences of ints (as the hub gives them).
        source: Name of where the rows came from, used in error messages (a path or a dataset split).
        length: Ints each row must hold; None takes the first row's length for all.
        num_colours: Indices must lie in ``[0, num_colours)``; None skips the check.
    """
    values = []
    for number, row in enumerate(rows, start=1):
        where = f"{source}:{number}"
        if isinstance(row, str):
            tokens = row.split()
            for token in tokens:
                if not (token.isascii() and token.isdigit()):
                    raise PixelFormatError(f"{where}: not an integer: {_shown(token)}")
                if len(token) > MAX_DIGITS and len(token.lstrip("0")) > MAX_DIGITS:  # int() would refuse 4300
                    raise PixelFormatError(f"{where}: a number of {len(token)} digits: {_shown(token)}")
            row = [int(token) for token in tokens]
        row = list(row)
        if length is None:
            length = len(row)
        if len(row) != length:
            raise PixelFormatError(f"{where}: expected {length} ints, got {len(row)}")
        if num_colours is not None:
            for position, value in enumerate(row):
                if not 0 <= value < num_colours:
                    raise PixelFormatError(
                        f"{where}: value {_shown(value)} at position {position} is outside the palette "
                        f"[0, {num_colours - 1}]"
                    )
        else:  # a torch.long holds them; a larger int from the hub would stop torch.tensor with an overflow
            for position, value in enumerate(row):
                if not -(2**63) <= value < 2**63:
                    raise PixelFormatError(f"{where}: value {_shown(value)} at position {position} is too large")
        values.append(row)
    if not values:
        raise PixelFormatError(f"{source}: no images (the file is empty)")
    return torch.tensor(values, dtype=torch.long)


def _shown(value: object) -> str:
    """``value`` for an error message, cut short: a hostile file's 5000-digit number should not fill the screen."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"


def names(path: str | Path) -> tuple[Path, Path]:
    """The two names a data file ``NAME`` may have: ``NAME`` and ``NAME.gz``."""
    path = Path(path)
    return path, path.with_name(path.name + ".gz")


def data_file(path: str | Path) -> Path:
    """``path`` itself, or ``path.gz`` when only the gzipped copy exists (the shipped data is gzipped).

    Raises:
        PixelFormatError: Both exist: a plain ``dev.txt`` left beside the shipped ``dev.txt.gz`` (a
            completion written there, an unpacked copy) would otherwise be read instead of it, silently.
    """
    path, packed = names(path)
    if os.path.lexists(path) and os.path.lexists(packed):
        raise PixelFormatError(
            f"{path} and {packed} both exist, and either could be the data: remove or rename the one that is not"
        )
    return packed if os.path.lexists(packed) else path


@contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading if it is a regular file; else one line saying what it is.

    The check is on the opened file itself (``fstat``), and the open does not block (``O_NONBLOCK``):
    a FIFO swapped in between a check and an ``open`` would otherwise wait for a writer forever.
    """
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise PixelFormatError(f"{path}: file not found") from None
    except OSError as error:
        raise PixelFormatError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        mode = os.fstat(handle).st_mode
        if stat.S_ISDIR(mode):
            raise PixelFormatError(f"{path}: is a folder, not a data file")
        if not stat.S_ISREG(mode):
            kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device or socket"
            raise PixelFormatError(f"{path}: is {kind}, not a regular file; data is only read from regular files")
        os.set_blocking(handle, True)
        file = os.fdopen(handle, "rb")
    except BaseException:
        os.close(handle)
        raise
    with file:
        yield file


def _line_limit(length: int | None, num_colours: int | None) -> int:
    """The most bytes a line of ``length`` numbers below ``num_colours`` may take (extra spaces and CRLF allowed)."""
    digits = len(str(num_colours - 1)) if num_colours else 3  # a palette's 0..255
    return (length or MAX_NUMBERS) * max(BYTES_PER_NUMBER, 2 * (digits + 1)) + 64


def _lines(file: BinaryIO, path: Path, limit: int) -> Iterator[str]:
    """The lines of ``file`` (gzipped if ``path`` ends in .gz), each at most ``limit`` bytes, as they are read.

    Lines end at a line feed only (``str.splitlines`` also splits at form feeds and other separators and
    would miscount lines); blank lines at the end are no image and are dropped.
    """
    packed = path.suffix == ".gz"
    stream = gzip.GzipFile(fileobj=file, mode="rb") if packed else file
    blank = 0  # blank lines held back: an image after them makes them (bad) lines, the end drops them
    number = 0
    while True:
        try:
            raw = stream.readline(limit + 1)
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; a cut-off .gz an EOFError
            reason = f"not a readable gzip file ({error})" if packed else f"cannot be read ({error})"
            raise PixelFormatError(f"{path}: {reason}") from None
        if not raw:
            return
        number += 1
        if len(raw) > limit:
            raise PixelFormatError(
                f"{path}:{number}: line longer than {limit} bytes, more than its numbers can take; "
                "not a file of this project's images?"
            )
        if number > MAX_IMAGES:
            raise PixelFormatError(f"{path}: more than {MAX_IMAGES} lines; not a file of this project's images?")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PixelFormatError(f"{path}:{number}: not UTF-8 text (byte {raw[error.start]:#04x})") from None
        if not line.strip():
            blank += 1
            continue
        yield from [""] * blank
        blank = 0
        yield line


def _read(path: str | Path, length: int | None, num_colours: int | None, parse) -> torch.Tensor:
    """``parse(lines, str(path))`` of the data file ``path`` (or ``path.gz``), read within the bounds of its shape."""
    found = data_file(path)
    with _opened(found) as file:
        return parse(_lines(file, found, _line_limit(length, num_colours)), str(path))


def read_images(path: str | Path, length: int | None = None, num_colours: int | None = None) -> torch.Tensor:
    """Reads one image per line from ``path`` into a ``(N, length)`` long tensor (see :func:`parse_rows`)."""
    return _read(path, length, num_colours, lambda lines, source: parse_rows(lines, source, length, num_colours))


def parse_palette(rows: Iterable[Sequence[int] | str], source: str, num_colours: int | None) -> torch.Tensor:
    """Checks "R G B" rows (ints in 0..255) and returns a ``(num_colours, 3)`` uint8 tensor."""
    palette = parse_rows(rows, source, 3, None)
    bad = ((palette < 0) | (palette > 255)).any(dim=1).nonzero()
    if len(bad):
        line = int(bad[0]) + 1
        raise PixelFormatError(f"{source}:{line}: colour {palette[line - 1].tolist()} is not three ints in 0..255")
    if num_colours is not None and len(palette) != num_colours:
        raise PixelFormatError(f"{source}: expected {num_colours} colours, got {len(palette)}")
    return palette.to(torch.uint8)


def read_palette(path: str | Path, num_colours: int | None = None) -> torch.Tensor:
    """Reads a palette file, one "R G B" line per colour (see :func:`parse_palette`)."""
    return _read(path, 3, 256, lambda lines, source: parse_palette(lines, source, num_colours))


def format_images(images: torch.Tensor) -> str:
    """One line of space-separated ints per image, as every file of this project holds them."""
    return "".join(" ".join(map(str, row)) + "\n" for row in images.tolist())


def write_images(path: str | Path, images: torch.Tensor) -> None:
    """Writes images one per line, atomically."""
    atomic_write_bytes(path, format_images(images).encode())

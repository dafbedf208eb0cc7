"""Reading, checking and writing the plain-text pixel formats.

One image per line, its palette indices separated by spaces; a palette is one
"R G B" line per colour. Every reader checks what it reads and raises a
:class:`PixelFormatError` naming the file, the line and the problem, because a
shape error deep inside a training step tells the user nothing. Numbers are
plain ASCII decimal digits, as in the course's files (Python's ``int`` would
also take ``+5``, ``1_2`` and non-ASCII digits); CRLF line ends and extra
spaces are fine. A file ``NAME`` may also be stored gzipped as ``NAME.gz``.
"""

import gzip
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from files.atomic_write import atomic_write_bytes

# The course's split (train, dev, test prefixes, palette), gzipped, as the project ships it.
SHIPPED_DATA = Path(__file__).resolve().parent.parent / "data" / "pokemon"


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
                    raise PixelFormatError(f"{where}: not an integer: {token!r}")
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
                        f"{where}: value {value} at position {position} is outside the palette [0, {num_colours - 1}]"
                    )
        values.append(row)
    if not values:
        raise PixelFormatError(f"{source}: no images (the file is empty)")
    return torch.tensor(values, dtype=torch.long)


def data_file(path: str | Path) -> Path:
    """``path`` itself, or ``path.gz`` when only the gzipped copy exists (the shipped data is gzipped)."""
    path = Path(path)
    packed = path.with_name(path.name + ".gz")
    return packed if not path.is_file() and packed.is_file() else path


def _lines(path: Path) -> list[str]:
    path = data_file(path)
    if not path.is_file():
        raise PixelFormatError(f"{path}: file not found")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:  # a damaged .gz
        raise PixelFormatError(f"{path}: not a readable gzip file ({error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise PixelFormatError(f"{path}:{line}: not UTF-8 text (byte {raw[error.start]:#04x})") from None
    lines = text.split("\n")  # not splitlines(): it also splits at \x0c, \x1c, ... and would miscount lines
    while lines and not lines[-1].strip():  # a trailing newline is not an image
        lines.pop()
    return lines


def read_images(path: str | Path, length: int | None = None, num_colours: int | None = None) -> torch.Tensor:
    """Reads one image per line from ``path`` into a ``(N, length)`` long tensor (see :func:`parse_rows`)."""
    path = Path(path)
    return parse_rows(_lines(path), str(path), length, num_colours)


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
    path = Path(path)
    return parse_palette(_lines(path), str(path), num_colours)


def format_images(images: torch.Tensor) -> str:
    """One line of space-separated ints per image, as every file of this project holds them."""
    return "".join(" ".join(map(str, row)) + "\n" for row in images.tolist())


def write_images(path: str | Path, images: torch.Tensor) -> None:
    """Writes images one per line, atomically."""
    atomic_write_bytes(path, format_images(images).encode())

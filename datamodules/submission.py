"""The submission format, and a checker for it.

A submission holds one line per test image, in test order, each the full image as space-separated
palette indices: the given prefix unchanged, then the generated pixels. For the course that is 80
lines of 400 ints in [0, 166], whose first 240 equal ``test.txt``.

Check a file before uploading it::

    python -m datamodules.submission check submission.txt [--prefixes data/pokemon/test.txt]

It prints ``OK: ...`` (status 0), or ``NOT OK: <file>:<line>: <problem>`` (status 1) for a submission
that must not be uploaded, whatever its file holds; a problem with what it checks against (the
prefixes file, ``--seq_len``, ``--num_colours``) is ``error: ...``, status 2, as for other bad options.
"""

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from datamodules.pixel_files import MAX_NUMBERS, SHIPPED_DATA, PixelFormatError, parse_rows, read_images

DEFAULT_PREFIXES = SHIPPED_DATA / "test.txt"  # the course's test prefixes, shipped gzipped


def validate(
    rows: Iterable[Sequence[int] | str],
    prefixes: torch.Tensor,
    source: str,
    seq_len: int = 400,
    num_colours: int = 167,
) -> torch.Tensor:
    """Checks completed images against the format and their prefixes; returns them as a tensor.

    Args:
        rows: The images, as lines of text or sequences of ints.
        prefixes: ``(N, prefix_len)`` given prefixes, in the order the images must follow.
        source: Name used in error messages (the file being checked or written).
        seq_len: Ints each image must hold.
        num_colours: Values must lie in ``[0, num_colours)``.

    Raises:
        PixelFormatError: Naming ``source``, the first bad line and what is wrong with it.
    """
    images = parse_rows(rows, source, seq_len, num_colours)
    if len(images) != len(prefixes):
        raise PixelFormatError(f"{source}: expected {len(prefixes)} lines (one per test image), got {len(images)}")
    given = prefixes.shape[1]
    differs = images[:, :given] != prefixes
    if differs.any():
        line, position = (int(i) for i in differs.nonzero()[0])
        raise PixelFormatError(
            f"{source}:{line + 1}: the first {given} values must be the given prefix, but position {position} "
            f"is {int(images[line, position])} instead of {int(prefixes[line, position])}"
        )
    return images


def check(
    path: str | Path,
    prefixes_path: str | Path = DEFAULT_PREFIXES,
    seq_len: int = 400,
    num_colours: int = 167,
) -> torch.Tensor:
    """Checks a submission file against the format and the test prefixes (see :func:`validate`)."""
    prefixes = read_prefixes(prefixes_path, seq_len, num_colours)
    images = read_images(path, seq_len, num_colours)
    return validate(images.tolist(), prefixes, str(path), seq_len, num_colours)


class CheckError(ValueError):
    """What the submission is checked against is unusable: the prefixes file or a ``check`` option."""


def read_prefixes(path: str | Path, seq_len: int, num_colours: int) -> torch.Tensor:
    """The given prefixes, each shorter than a full image; a :class:`CheckError` naming what is wrong."""
    # A palette of more than 2**24 colours would repeat one: there are no more RGB colours.
    for option, value, most in (("--seq_len", seq_len, MAX_NUMBERS), ("--num_colours", num_colours, 2**24)):
        if not 1 <= value <= most:
            raise CheckError(f"{option}: must be 1 to {most}, got {value}")
    try:
        prefixes = read_images(path, None, num_colours)
    except PixelFormatError as error:
        raise CheckError(f"--prefixes: {error}") from None
    if prefixes.shape[1] > seq_len:
        given = prefixes.shape[1]
        raise CheckError(f"--prefixes: {path}: its prefixes hold {given} ints, more than --seq_len {seq_len}")
    return prefixes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datamodules.submission", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checker = commands.add_parser("check", help="check a submission file; prints OK or the first problem")
    checker.add_argument("file", help="the submission to check")
    checker.add_argument("--prefixes", default=DEFAULT_PREFIXES, help="the test prefixes (default: %(default)s)")
    checker.add_argument("--seq_len", type=int, default=400, help="ints per line (default: %(default)s)")
    checker.add_argument("--num_colours", type=int, default=167, help="palette size (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        images = check(args.file, args.prefixes, args.seq_len, args.num_colours)
    except CheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except PixelFormatError as error:
        print(f"NOT OK: {error}", file=sys.stderr)
        return 1
    print(f"OK: {args.file}: {len(images)} images of {images.shape[1]} pixels, prefixes match {args.prefixes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

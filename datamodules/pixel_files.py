"""Reading, checking and writing the plain-text pixel formats.

One image per line, its palette indices separated by spaces; a palette is one
"R G B" line per colour. Every reader checks what it reads and raises a
:class:`PixelFormatError` naming the file, the line and the problem, because a
shape error deep inside a training step tells the user nothing. Numbers are
plain ASCII decimal digits, as in the course's files (Python's ``int`` would
also take ``+5``, ``1_2`` and non-ASCII digits); CRLF line ends and extra
spaces are fine. A file ``NAME`` may also be stored gzipped as ``NAME.gz``.
"""

import errno
import gzip
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

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


class WriteError(OSError):
    """A file could not be written (full disk, read-only folder, a folder in the way); the message says which and why."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)  # not OSError(code, message): its text would start with "[Errno N]"
        self.errno = code


def check_writable(path: str | Path) -> None:
    """Raises, before any work is done, the error that writing ``path`` would raise at the end."""
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"{path} is a folder; give a file name, e.g. {path / 'submission.txt'}", errno.EISDIR)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):  # also false for root on a read-only file system (EROFS)
        raise WriteError(f"cannot write {path}: {path.parent} is {_unwritable_reason(path.parent)}", errno.EACCES)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The bytes go to a temporary file in the same folder (the same file system, so the final rename
    cannot turn into a copy), are flushed to the disk, and then replace the target. A write that
    fails (a full disk, Ctrl-C) removes its temporary file, keeps the old file and raises a
    :class:`WriteError` saying why in one line.
    """
    atomic_write_files({path: data})


def atomic_write_files(files: dict[str | Path, bytes]) -> None:
    """Writes several files as :func:`atomic_write_bytes` does, and replaces them all or none.

    Every temporary file is written first; the renames then run with Ctrl-C and SIGTERM held back,
    so a stop leaves all the old files (a submission and its picture) or all the new ones.
    """
    temporaries: dict[Path, str] = {}
    try:
        for path, data in files.items():
            path = Path(path)
            if not path.parent.is_dir():
                raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
            try:
                temporaries[path] = _write_temporary(path, data)
            except OSError as error:
                raise _write_error(path, error, len(data)) from None
        with _signals_held():
            for path, temporary in temporaries.items():
                try:
                    os.replace(temporary, path)
                except OSError as error:
                    raise _write_error(path, error, None) from None
                _sync_folder(path.parent)
    except BaseException:
        for temporary in temporaries.values():
            Path(temporary).unlink(missing_ok=True)
        raise


def _write_temporary(path: Path, data: bytes) -> str:
    """``data`` in a new temporary file beside ``path``, on the disk; its name."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; the file should look like any other
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def _write_error(path: Path, error: OSError, size: int | None) -> WriteError:
    """One line for ``error`` while writing ``path``: what happened, and that the old file is kept."""
    folder = path.parent
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(folder).free
        needs = f" ({_size(size)} needed, {_size(free)} free)" if size is not None else ""
        reason = f"no space left on {_mount_point(folder)} to save {path}{needs}"
    elif error.errno == errno.EISDIR or path.is_dir():
        return WriteError(f"{path} is a folder; give a file name, e.g. {path / 'submission.txt'}", error.errno)
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = f"cannot write {path}: {folder} is {_unwritable_reason(folder)}"
    else:
        reason = f"cannot write {path}: {error.strerror or error}"
    kept = f"the previous {path.name} is kept" if path.is_file() else f"no {path.name} was written"
    return WriteError(f"{reason}; {kept}", error.errno)


def _unwritable_reason(folder: Path) -> str:
    if not os.statvfs(folder).f_flag & os.ST_RDONLY:
        return "not writable (permission denied)"
    mount = _mount_point(folder)
    return "on a read-only file system" + (f" (mounted at {mount})" if mount != folder.resolve() else "")


def _mount_point(folder: Path) -> Path:
    """The mount point of the file system that holds ``folder`` (``/`` for the root disk)."""
    folder = folder.resolve()
    while not os.path.ismount(folder):
        folder = folder.parent
    return folder


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def _sync_folder(folder: Path) -> None:
    """Flushes a rename to the disk too, so that a power cut after it cannot undo it."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some file systems cannot sync a folder; the rename itself is done
        pass
    finally:
        os.close(handle)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done (then arrive as usual); off the main thread, nothing."""
    held = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def format_images(images: torch.Tensor) -> str:
    """One line of space-separated ints per image, as every file of this project holds them."""
    return "".join(" ".join(map(str, row)) + "\n" for row in images.tolist())


def write_images(path: str | Path, images: torch.Tensor) -> None:
    """Writes images one per line, atomically."""
    atomic_write_bytes(path, format_images(images).encode())

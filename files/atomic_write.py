"""Writing files so that a reader sees the old file or the new one, never a part of either.

Every file the project writes (submissions, PNGs, checkpoints, configs, bench JSON) goes through
:func:`atomic_write_files`: a temporary file beside the target, flushed to the disk, then renamed over
it, with signals held during the renames so Ctrl-C cannot leave half of a set replaced. A write that
fails says why in one line (:class:`WriteError`) and keeps what was there.
"""

import errno
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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

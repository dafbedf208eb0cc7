"""Writing files so that a reader sees the old file or the new one, never a part of either.

Every file the project writes (submissions, PNGs, checkpoints, configs, bench JSON) goes through
:func:`atomic_write_files`: a temporary file beside the target, flushed to the disk, then renamed over
it, with signals held during the renames so Ctrl-C cannot leave half of a set replaced. A write that
fails says why in one line (:class:`WriteError`) and keeps what was there.

Outputs are only ever regular files: a target that exists as anything else (a device such as
``/dev/null``, a FIFO, a socket, a folder) is refused, since a rename would replace the node itself.
A target that is a symbolic link to a regular file has the link replaced, never the file it points to.
A writer may also name the files its run reads (``inputs``): a target that is, or resolves to, one
of them is refused, so a run never overwrites its own data.
"""

import errno
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class WriteError(OSError):
    """A file could not be written (full disk, read-only folder, a folder in the way); the message says which and why."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)  # not OSError(code, message): its text would start with "[Errno N]"
        self.errno = code


def check_writable(path: str | Path, inputs: Iterable[str | Path] = ()) -> None:
    """Raises, before any work is done, the error that writing ``path`` would raise at the end.

    Args:
        path: The file to be written.
        inputs: Files the run reads; ``path`` must not be (or resolve to) any of them.
    """
    path = Path(path)
    check_target(path, inputs)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):  # also false for root on a read-only file system (EROFS)
        raise WriteError(f"cannot write {path}: {path.parent} is {_unwritable_reason(path.parent)}", errno.EACCES)


def check_target(path: str | Path, inputs: Iterable[str | Path] = ()) -> None:
    """Refuses a ``path`` that is not a regular file or nothing yet, or that is one of ``inputs``.

    ``os.replace`` would replace whatever the name holds: as root, ``--output /dev/null`` would turn
    the machine's ``/dev/null`` into a text file. Links are followed to see what they point to
    (``/dev/stdout`` is a link to a terminal or pipe); an input is matched by its file (``os.stat``:
    hard links, ``..`` and symbolic links alike) or, when it does not exist yet, by its resolved name.
    """
    path = Path(path)
    try:
        status = os.stat(path)
    except OSError:  # nothing there yet (or a broken link, replaced as a link); the write says the rest
        status = None
    if status is not None and stat.S_ISDIR(status.st_mode):
        raise WriteError(f"{path} is a folder; give a file name, e.g. {path / 'submission.txt'}", errno.EISDIR)
    if status is not None and not stat.S_ISREG(status.st_mode):
        what = f"is a link to {os.readlink(path)}, which is" if path.is_symlink() else "is"
        raise WriteError(
            f"{path} {what} {_kind(status.st_mode)}, not a regular file; outputs are only written as regular "
            "files: give another file name",
            errno.EINVAL,
        )
    for source in inputs:
        if _same_file(path, status, Path(source)):
            same = "" if Path(source) == path else f" (the same file as {source})"
            raise WriteError(
                f"{path} is an input of this run{same}, or a name it is read under: writing it would replace "
                "what the run reads; give another file name",
                errno.EINVAL,
            )


def _kind(mode: int) -> str:
    """What a file that is not a regular file or a folder is, in words."""
    for test, kind in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _same_file(path: Path, status: os.stat_result | None, source: Path) -> bool:
    """Whether writing ``path`` (whose ``os.stat`` is ``status``, None when absent) would replace ``source``."""
    try:
        other = os.stat(source)
    except OSError:
        other = None
    if status is not None and other is not None:
        return (status.st_dev, status.st_ino) == (other.st_dev, other.st_ino)
    return os.path.realpath(path) == os.path.realpath(source)


def atomic_write_bytes(path: str | Path, data: bytes, inputs: Iterable[str | Path] = ()) -> None:
    """Writes ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The bytes go to a temporary file in the same folder (the same file system, so the final rename
    cannot turn into a copy), are flushed to the disk, and then replace the target. A write that
    fails (a full disk, Ctrl-C) removes its temporary file, keeps the old file and raises a
    :class:`WriteError` saying why in one line. A target that is not a regular file, or is one
    of ``inputs``, is refused (see :func:`check_target`).
    """
    atomic_write_files({path: data}, inputs)


def atomic_write_files(files: dict[str | Path, bytes], inputs: Iterable[str | Path] = ()) -> None:
    """Writes several files as :func:`atomic_write_bytes` does, and replaces them all or none.

    Every target is checked first (:func:`check_target`), then every temporary file is written; the
    renames then run with Ctrl-C and SIGTERM held back, so a stop leaves all the old files (a
    submission and its picture) or all the new ones.
    """
    inputs = list(inputs)
    for path in files:
        check_target(path, inputs)
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

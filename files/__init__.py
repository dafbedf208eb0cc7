"""Safe file writing shared by every layer: atomic replacement and one-line write errors."""

from files.atomic_write import WriteError, atomic_write_bytes, atomic_write_files, check_target, check_writable

__all__ = ["WriteError", "atomic_write_bytes", "atomic_write_files", "check_target", "check_writable"]

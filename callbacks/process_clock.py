"""Seconds since this process started: the clock a time budget (``trainer.max_time``) is spent against."""

import os
import time
from pathlib import Path

_IMPORTED = time.monotonic()


def process_seconds() -> float:
    """Seconds since this process started: what a user timing the command counts, imports included.

    Linux's ``/proc`` knows the start; elsewhere the clock starts when this module was imported.
    """
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, the start in clock ticks after boot
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED

"""The processor a bench measures on, and the threads and cores its child processes may use there."""

import os
from collections.abc import Callable
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name (Linux), so that a table says which CPU it was measured on."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "CPU"
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else "CPU"


def cpu_label(cores: int) -> str:
    """``<model name>, <cores> cores``: the machine line of a bench's table."""
    return f"{cpu_name()}, {cores} cores"


def thread_env(threads: int) -> dict[str, str]:
    """This process's environment for a child that runs ``threads`` threads (OpenMP's and MKL's).

    ``POKEMON_RUN_DIR`` is left out: a variable left over from another run would redirect the child's run folder.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("POKEMON_RUN_DIR", None)
    return env


def on_cores(cores: list[int]) -> Callable[[], None]:
    """A ``subprocess`` ``preexec_fn`` that pins the child to ``cores`` (as ``taskset -c``)."""
    return lambda: os.sched_setaffinity(0, cores)

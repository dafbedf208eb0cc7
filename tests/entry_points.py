"""Runs the project's scripts as a user does, ``python train.py ARGS``, inside the test process.

A fresh Python process costs about 6 s of imports (torch, Lightning, transformers, W&B) on a 2-core
CPU, more than the tiny runs themselves; so :func:`run` executes the script's own ``__main__`` block
(its error policy, exit status and signal handling included) in this process, with ``sys.argv``, the
environment, the working folder, stdout and stderr as the real process would have them. Only tests of
the process boundary itself (signals, ``kill -9``, DDP's worker processes, the fresh clone, what is
left when the process exits) pass ``fresh_process=True``.

When the entry points change how they apply the error policy (``main`` itself, or a wrapper in the
script), nothing here changes: the script's ``__main__`` block is what runs.
"""

import io
import logging
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from checkpointing.run_folders import RUN_DIR_ENV  # the run folder train.py hands to DDP workers: never inherited

ROOT = Path(__file__).resolve().parent.parent
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")  # each prints to stderr in a fresh process


@dataclass
class Result:
    """What a finished script left: its exit status and everything it wrote to stdout and stderr."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run(
    script: str,
    *args: str,
    wandb_mode: str | None = "disabled",
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    fresh_process: bool = False,
    timeout: float = 600,
) -> Result:
    """Runs ``python <script> ARGS`` (or ``python -m MODULE ARGS`` for ``script="-m"``) from the repository root.

    Args:
        script: A path relative to the repository root (``train.py``, ``bench/quality.py``), or ``-m``
            with the module name as the first of ``args``.
        wandb_mode: ``WANDB_MODE`` for the run; None leaves it unset, as for a user who never set it.
        check: Fail the test, with the script's stderr, unless it exits with status 0.
        env: More environment variables (an empty string unsets nothing: it sets the variable to "").
        cwd: The working folder (default: the repository root), where default outputs land.
        fresh_process: Start a new Python process instead (signals, kill -9, DDP, leftovers at exit).
        timeout: Seconds a fresh process may take.
    """
    variables = {"WANDB_MODE": wandb_mode, **(env or {})}
    removed = [RUN_DIR_ENV, *(["WANDB_MODE"] if wandb_mode is None else [])]
    if fresh_process:
        result = _in_new_process(script, list(args), variables, removed, cwd, timeout)
    else:
        result = _in_this_process(script, list(args), variables, removed, cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def assert_error(result: Result, *parts: str, passed_on: int = 0) -> str:
    """The run failed with status 2, no traceback, and stderr ends with its ``error: ...`` line, which holds
    each of ``parts``; that line. Before it, only ``passed_on`` error lines: a child process's own (the
    reranker's), shown as it printed them."""
    assert result.returncode == 2, f"exit status {result.returncode}:\n{result.stderr[-3000:]}"
    return _the_one_error_line(result.stderr, *parts, passed_on=passed_on)


def exits_with_one_line(capsys, main, args: list[str], *parts: str, status: int = 2) -> str:
    """``main(args)`` (an entry point's ``main``, in this process) exits with ``status`` and one line on
    stderr, ``error: ...``, holding each of ``parts``; that line."""
    with pytest.raises(SystemExit) as exit:
        main(args)
    err = capsys.readouterr().err
    assert exit.value.code == status, f"exit status {exit.value.code}:\n{err[-3000:]}"
    return _the_one_error_line(err, *parts)


def _the_one_error_line(stderr: str, *parts: str, passed_on: int = 0) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 + passed_on and errors[-1] == lines[-1], stderr[-3000:]
    for part in parts:
        assert part in errors[-1], errors[-1]
    return errors[-1]


def _in_new_process(script, args, variables, removed, cwd, timeout) -> Result:
    # One thread, as in the test process (conftest): bit-exact comparisons between runs need one thread count.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **variables}
    for name in (*removed, "WANDB_SERVICE"):  # a W&B service of this process's earlier in-process runs
        env.pop(name, None)
    command = [sys.executable, script if script == "-m" else str(ROOT / script), *args]
    done = subprocess.run(command, cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return Result(command[1:], done.returncode, done.stdout, done.stderr)


def _in_this_process(script, args, variables, removed, cwd) -> Result:
    saved_environ, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    os.environ.update({name: value for name, value in variables.items() if value is not None})
    for name in removed:
        os.environ.pop(name, None)
    module = args[0] if script == "-m" else None
    sys.argv = [module or str(ROOT / script), *(args[1:] if module else args)]
    os.chdir(cwd or ROOT)

    def as_main() -> None:  # what `python SCRIPT` / `python -m MODULE` execute
        if module:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(str(ROOT / script), run_name="__main__")

    try:
        with _captured() as (stdout, stderr):
            returncode = _exit_status(as_main)
    finally:
        _end_wandb()
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_environ)
    return Result([script, *args], returncode, stdout.getvalue(), stderr.getvalue())


def _exit_status(main) -> int:
    """The status the interpreter would exit with after ``main``, printing what it would print."""
    try:
        main()
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)  # sys.exit("message"): printed, status 1
        return 1
    except Exception:  # noqa: BLE001 (a bug's traceback, as the interpreter prints it)
        traceback.print_exc()
        return 1
    return 0


@contextmanager
def _captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Collects what the script writes to stdout and stderr: Python's streams, the file descriptors
    (child processes such as the reranker's training, C libraries) and Lightning's log lines.

    Yields two StringIO objects filled in when the block ends.
    """
    texts = io.StringIO(), io.StringIO()
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved_fds = [os.dup(1), os.dup(2)]
    saved_streams = sys.stdout, sys.stderr
    os.dup2(files[0].fileno(), 1)
    os.dup2(files[1].fileno(), 2)
    sys.stdout, sys.stderr = (
        io.TextIOWrapper(open(fd, "wb", closefd=False), encoding="utf-8", errors="replace", write_through=True)
        for fd in (1, 2)
    )
    restore_logging = _log_to(sys.stderr)
    try:
        yield texts
    finally:
        restore_logging()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = saved_streams
        for fd, saved in zip((1, 2), saved_fds, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        for file, text in zip(files, texts, strict=True):
            file.seek(0)
            text.write(file.read().decode("utf-8", errors="replace"))
            file.close()


def _log_to(stream) -> callable:
    """Points Lightning's log lines at ``stream``, as in a fresh process; returns the undo."""
    changes = []
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        changes.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = [logging.StreamHandler(stream)]
        logger.propagate = False

    def undo() -> None:
        for logger, handlers, propagate in changes:
            logger.handlers, logger.propagate = handlers, propagate

    return undo


def _end_wandb() -> None:
    """Finishes the script's W&B run (so its files are complete) and forgets W&B's settings, which it
    reads from the environment once per process: the next script may set another WANDB_MODE."""
    wandb = sys.modules.get("wandb")
    if wandb is None:
        return
    if wandb.run is not None:
        wandb.finish()
    wandb.teardown()
    # W&B leaves its service's socket address in os.environ; a process started later (a fresh-process test,
    # the reranker) would inherit it and try to connect to the service teardown just stopped.
    os.environ.pop("WANDB_SERVICE", None)


def copy_tracked_files(folder: Path) -> Path:
    """The files git tracks in this checkout, as they are in the working tree, copied into ``folder``
    (what a clone of this work gives)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    return folder

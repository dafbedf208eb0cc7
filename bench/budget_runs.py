"""Training the runs of ``bench/budget.py``: each budget, thread count and schedule as a ``train.py`` process
of its own, pinned to its cores, one after another or side by side (``--parallel``)."""

import argparse
import json
import os
import queue
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import yaml

from bench.cpu import on_cores, thread_env
from callbacks.time_budget import max_time_string
from checkpointing.run_folders import newest_checkpoint
from cli.round_trip_yaml import round_trip_dump

ROOT = Path(__file__).resolve().parent.parent
WALL = "bench_wall.json"  # beside the run folders: the measured wall time and how it trained, for --reuse


def run_name(config: str, budget: float, threads: int, schedule: str = "steps") -> str:
    """``quick_5min_1t``: the run folder of one budget and thread count (``quick_5min_1t_elapsed``: that schedule)."""
    return f"{Path(config).stem}_{budget:g}min_{threads}t" + ("" if schedule == "steps" else f"_{schedule}")


def with_schedule(config: str, schedule: str, folder: Path) -> str:
    """``--config`` for ``config`` with its TimeBudget on ``schedule``: the config itself for ``steps``, else its
    resolved form (``train.py --print_config``) with that one change, written into ``folder``."""
    if schedule == "steps":
        return config
    printed = subprocess.run(
        [sys.executable, "train.py", "--config", config, "--print_config"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    resolved = yaml.safe_load(printed)
    budgets = [c for c in resolved["trainer"]["callbacks"] or [] if c["class_path"].endswith(".TimeBudget")]
    if not budgets:
        raise ValueError(f"--config {config}: no callbacks.TimeBudget whose schedule --schedules could set")
    for callback in budgets:
        callback.setdefault("init_args", {})["schedule"] = schedule
    path = folder / f"config_{schedule}.yaml"
    path.write_text(round_trip_dump(resolved))
    return str(path)


def train(
    args: argparse.Namespace, config: str, budget: float, threads: int, schedule: str, cores: list[int], parallel: bool
) -> dict:
    """Trains one run as a process limited to ``threads`` threads on ``cores``; what :data:`WALL` keeps of it:
    its wall time in seconds and whether it trained beside another run (``parallel``)."""
    name = run_name(config, budget, threads, schedule)
    root = args.out / name
    root.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "train.py", "--config", with_schedule(config, schedule, root),
        f"--trainer.max_time={max_time_string(budget * 60)}",
        "--trainer.default_root_dir", str(root), *(["--data.data_dir", args.data_dir] if args.data_dir else []),
        *args.train_args,
    ]  # fmt: skip
    print(
        f"{name}: {' '.join(command[1:])} (cores {cores})",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    with (root / "train.log").open("w") as log:
        done = subprocess.run(
            command, cwd=ROOT, env=thread_env(threads), stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=on_cores(cores),
        )  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{root}: train.py exited with {done.returncode} (its output: {root / 'train.log'})")
    (root / WALL).write_text(json.dumps(trained := {"wall_s": wall, "parallel": parallel}) + "\n")
    checkpoint = newest_checkpoint(root, "best")
    record = run_record(checkpoint) if checkpoint else {}
    steps = (
        f"{record.get('steps_run')} steps of {record.get('max_steps')} planned ({record.get('stopped_by')}), "
        if record
        else ""
    )
    print(
        f"{name}: {steps}{wall / 60:.2f} min of {budget:g}",
        file=sys.stderr,
        flush=True,
    )
    return trained


def run_record(checkpoint: Path) -> dict:
    """The run's ``time_budget.yaml`` (its planned and run steps), or {} when it has none."""
    path = checkpoint.parent.parent / "time_budget.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def train_all(args: argparse.Namespace, combos: list[tuple[str, float, int, str]]) -> dict:
    """Trains every run (side by side with ``--parallel``); what :func:`train` returns for each."""
    cores = sorted(os.sched_getaffinity(0))
    walls = {}
    for threads in dict.fromkeys(combo[2] for combo in combos):  # the --threads order
        group = [combo for combo in combos if combo[2] == threads]
        slots = len(cores) // threads if args.parallel else 1
        free: queue.Queue[list[int]] = queue.Queue()
        for slot in range(slots):  # taskset -c 0 for one thread, -c 1 for the second side-by-side run
            free.put(cores[slot * threads : (slot + 1) * threads])
        with ThreadPoolExecutor(max_workers=slots) as pool:
            trained = pool.map(partial(train_on_free_cores, args, free, slots > 1), group)
            walls.update(zip(group, trained, strict=True))
    return walls


def train_on_free_cores(
    args: argparse.Namespace, free: queue.Queue, parallel: bool, combo: tuple[str, float, int, str]
) -> dict:
    """Trains ``combo`` on the cores taken from ``free``, then gives them back."""
    cores = free.get()
    try:
        return train(args, *combo, cores, parallel)
    finally:
        free.put(cores)

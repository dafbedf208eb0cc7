"""Recipes trained side by side: each ``NAME=CONFIG [ARGS]`` its own ``train.py`` process pinned to its own cores,
its validations reported as they come."""

import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.cpu import on_cores, thread_env
from bench.validation_records import METRIC, read_records

ROOT = Path(__file__).resolve().parent.parent
CALLBACK = "callbacks.ElapsedTime"  # logs time/elapsed_s with each validation's metrics, time/fit_s at the end


@dataclass
class Recipe:
    name: str
    config: str
    args: list[str]
    cores: list[int] = field(default_factory=list)
    run_dir: Path | None = None
    returncode: int | None = None
    wall_s: float | None = None
    records: list[dict] = field(default_factory=list)


def parse_recipe(text: str) -> Recipe:
    """``NAME=CONFIG [ARGS...]`` (shell quoting) as a Recipe."""
    name, sep, rest = text.partition("=")
    words = shlex.split(rest)
    if not sep or not name or not words or "/" in name:
        raise argparse.ArgumentTypeError(f"--recipe {text!r}: expected NAME=CONFIG [train.py arguments]")
    return Recipe(name, words[0], words[1:])


def versions(root: Path) -> set[Path]:
    from checkpointing.run_folders import versions as run_versions

    return set(run_versions(root))


def assign_cores(recipes: list[Recipe], cores: list[int], threads: int) -> bool:
    """Gives each recipe ``threads`` cores in turn; True when some recipes had to share."""
    for index, recipe in enumerate(recipes):
        recipe.cores = sorted({cores[(index * threads + j) % len(cores)] for j in range(threads)})
    return len(recipes) * threads > len(cores)


CSV_LOGGER = (
    "lightning.pytorch.loggers.CSVLogger"  # validation_records reads its metrics.csv; the CLI puts it in the run
)


def train_command(recipe: Recipe, out: Path, common: list[str]) -> list[str]:
    return [
        sys.executable, "train.py", "--config", recipe.config,
        "--trainer.default_root_dir", str(out / recipe.name),
        f"--trainer.callbacks+={CALLBACK}",
        f'--trainer.logger+={{"class_path": "{CSV_LOGGER}", "init_args": {{"save_dir": "."}}}}',  # the run's metrics.csv
        *common, *recipe.args,
    ]  # fmt: skip


def run_recipes(recipes: list[Recipe], out: Path, common: list[str], threads: int) -> None:
    """Starts every recipe's train.py at once, reports validations as they come, and waits for all."""
    env = thread_env(threads)
    processes, before = {}, {}
    for recipe in recipes:
        before[recipe.name] = versions(out / recipe.name)
        log = (out / f"{recipe.name}.log").open("w")
        processes[recipe.name] = (
            subprocess.Popen(
                train_command(recipe, out, common), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=on_cores(recipe.cores),
            ),
            time.perf_counter(),
            log,
        )  # fmt: skip
    pending = dict(processes)
    while pending:
        time.sleep(2)
        for recipe in recipes:
            report_new_validations(recipe, out, before[recipe.name])
            if recipe.name in pending and (code := pending[recipe.name][0].poll()) is not None:
                process, start, log = pending.pop(recipe.name)
                recipe.returncode, recipe.wall_s = code, time.perf_counter() - start
                log.close()
                report_new_validations(recipe, out, before[recipe.name])
                print(f"{recipe.name}: train.py exited with {code} after {recipe.wall_s / 60:.1f} min", file=sys.stderr)


def report_new_validations(recipe: Recipe, out: Path, before: set[Path]) -> None:
    """Reads the recipe's validation log (finding its new run folder first) and prints the lines not seen yet."""
    if recipe.run_dir is None:
        new = sorted(versions(out / recipe.name) - before)
        if not new:
            return
        recipe.run_dir = new[-1]
    records = read_records(recipe.run_dir)
    if records is None:
        return
    for record in records[len(recipe.records) :]:
        if "event" not in record:
            print(
                f"{recipe.name}: {record['elapsed_s'] / 60:.2f} min, epoch {record['epoch']}, step {record['step']}, "
                f"{METRIC} {record.get(METRIC, float('nan')):.4f}",
                file=sys.stderr,
                flush=True,
            )
    recipe.records = records

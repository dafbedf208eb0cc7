"""What a time budget decided, kept in the run folder: the step count in ``config.yaml`` and ``time_budget.yaml``."""

import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_only

from files.atomic_write import atomic_write_bytes

RECORD = "time_budget.yaml"  # beside the run's config.yaml


@rank_zero_only
def save_step_count(trainer: L.Trainer, log_dir: str | None, steps: int) -> None:
    """Writes the step count into the run's ``config.yaml``: that config alone repeats the run."""
    for callback in trainer.callbacks:
        if isinstance(callback, SaveConfigCallback) and log_dir is not None:
            callback.config.trainer.max_steps = steps
            path = Path(log_dir) / callback.config_filename
            if path.is_file():  # written already at the start of training; else it will be, with the count
                atomic_write_bytes(path, callback.parser.dump(callback.config, skip_unset=False).encode())


@rank_zero_only
def write_record(log_dir: str | None, plan: dict[str, Any]) -> None:
    """``time_budget.yaml``: the step count, what it was made from, and how the run ended."""
    import yaml

    if log_dir is None:
        return
    timings = lambda key: key.endswith("_s") or key == "seconds_per_step"  # noqa: E731 (the rest exactly)
    record = {key: round(value, 4) if timings(key) else value for key, value in plan.items()}
    record["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    steps = plan["max_steps"]
    record["reproduce"] = (
        "not by a step count: the schedule followed the clock (schedule: elapsed)" if plan.get("schedule") == "elapsed"
        else f"the same command with --trainer.max_steps={steps}" if steps is not None
        else "none: the time cap stopped the run before its step count was set"
    )  # fmt: skip
    atomic_write_bytes(Path(log_dir) / RECORD, yaml.safe_dump(record, sort_keys=False).encode())

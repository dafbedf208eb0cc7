"""What a training run logged, read in one place for every test: W&B's offline records and the validation log.

When a run's metrics move to another file or format, only this module changes; the tests keep their
assertions on rows of ``{metric name: value}``.
"""

import json
from pathlib import Path

import wandb_records


def history(run_dir: Path) -> list[dict]:
    """Every row the run logged to W&B (offline, under ``run_dir/wandb``), in order."""
    return wandb_records.history(run_dir)


def logged_config(run_dir: Path) -> dict:
    """The run's hyperparameters as W&B recorded them."""
    return wandb_records.config(run_dir)


def metric(rows: list[dict], key: str) -> list:
    """The values logged under ``key``, in order."""
    return [row[key] for row in rows if key in row]


def validations(run_dir: Path) -> list[dict]:
    """The run's ``validation_log.jsonl`` records, one per validation, without the closing ``fit_end`` one."""
    records = [json.loads(line) for line in (Path(run_dir) / "validation_log.jsonl").read_text().splitlines()]
    return [record for record in records if record.get("event") != "fit_end"]

"""The validations of a training run, read back from the ``metrics.csv`` its ``CSVLogger`` writes, with the seconds
``callbacks.ElapsedTime`` logs beside them."""

import csv
import math
from pathlib import Path

METRIC = "val/bits_per_pixel"


def read_records(run_dir: Path) -> list[dict] | None:
    """``{"elapsed_s", "epoch", "step", <metrics>}`` of each validation in the run's newest ``metrics.csv``
    (a ``CSVLogger``'s), then ``{"event": "fit_end", "elapsed_s", ...}`` once the fit has ended. A row holds
    only what was logged with it, so a metric a validation did not log (``val/recon_acc`` between
    completions, ``model.recon_every_n_epochs``) is absent, not repeated; so is a NaN or infinite one.
    None: the file is being rewritten (the logger adds a column), read it next time."""
    found = sorted(run_dir.glob("**/metrics.csv"), key=lambda path: path.stat().st_mtime)
    if not found:
        return []
    try:
        with found[-1].open(newline="") as file:
            rows = [{key: float(value) for key, value in row.items() if value} for row in csv.DictReader(file)]
    except (OSError, ValueError):
        return None
    rows = [{key: value for key, value in row.items() if math.isfinite(value)} for row in rows]
    records = []
    for row in rows:
        place = {"epoch": int(row.pop("epoch", -1)), "step": int(row.pop("step", -1))}
        if "time/elapsed_s" in row:
            records.append({"elapsed_s": row.pop("time/elapsed_s"), **place, **row})
        elif "time/fit_s" in row:
            records.append({"elapsed_s": row["time/fit_s"], "event": "fit_end", **place})
    return records

"""Wall-clock time and metrics of every validation, one JSON line each, for time-to-quality comparisons."""

import json
import math
import time
from pathlib import Path

import lightning as L


class ValidationLog(L.Callback):
    """Appends ``{"elapsed_s", "epoch", "step", <metrics>}`` to a JSON-lines file at each validation end.

    ``elapsed_s`` counts wall-clock seconds since fit start: training, validation, checkpoints and sample
    images, everything a recipe spends, but not the interpreter's start and imports. A last line
    ``{"event": "fit_end", ...}`` gives the whole fit. ``bench/time_to_quality.py`` adds it to train.py with
    ``--trainer.callbacks+=callbacks.validation_log.ValidationLog``.

    Args:
        filename: The file, relative to the run folder (``trainer.default_root_dir``) unless absolute.
    """

    def __init__(self, filename: str = "validation_log.jsonl") -> None:
        self.filename = filename
        self.start: float | None = None
        self._before: dict = {}

    def path(self, trainer: L.Trainer) -> Path:
        return Path(trainer.default_root_dir) / self.filename

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._before = dict(trainer.callback_metrics)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.start is None:
            return
        # callback_metrics keeps every metric's last value: a val/ metric that this validation did not
        # log (val/recon_acc between completions, model.recon_every_n_epochs) is left out, not repeated
        stale = {name for name, value in trainer.callback_metrics.items()
                 if name.startswith("val/") and self._before.get(name) is value}
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()
                   if value.numel() == 1 and name not in stale}
        self._write(trainer, {"epoch": trainer.current_epoch, "step": trainer.global_step, **metrics})

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.start is not None:
            self._write(trainer, {"event": "fit_end", "epoch": trainer.current_epoch, "step": trainer.global_step})

    def _write(self, trainer: L.Trainer, record: dict) -> None:
        if not trainer.is_global_zero:
            return
        record = {"elapsed_s": time.perf_counter() - self.start, **record}
        record = {key: None if isinstance(value, float) and not math.isfinite(value) else value for key, value in record.items()}
        path = self.path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as file:
            file.write(json.dumps(record) + "\n")

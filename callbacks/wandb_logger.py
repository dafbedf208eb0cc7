"""Lightning's ``WandbLogger`` as this project's W&B users expect it.

Lightning's logger leaves a run's summary at the last value of every metric, while the checkpoint
``predict.py`` uses is the best validation's; it cannot tie the reranker's run to its model's run;
and it passes ``anonymous=None`` to ``wandb.init``, which W&B answers with a warning on every run.
"""

import os
import re
import secrets
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_only

# The direction in which a validation metric improves, by the last part of its name: the summary of
# these keeps the best value (val/bits_per_pixel: the one whose checkpoint is best.ckpt), not the last.
BEST = (
    ("min", re.compile(r"loss|bits_per_pixel|fid(_\w+)?")),  # val/loss, val/fid_classifier
    ("max", re.compile(r"(\w+_)?acc(uracy)?(_\w+)?|pdr")),  # val/recon_acc, val/acc_real
)

RERANKER_JOB = "reranker"  # the job type of the classifier that callbacks.TrainReranker trains with a model


def best_direction(key: str) -> str | None:
    """``min`` or ``max`` for a validation metric whose best value is the one to show, else None."""
    stage, _, name = key.rpartition("/")
    if stage != "val":
        return None  # training values are noisy per step; their last value is what the summary should say
    return next((direction for direction, pattern in BEST if pattern.fullmatch(name)), None)


class WandbLogger(LightningWandbLogger):
    """Lightning's ``WandbLogger`` (every argument of it works the same), plus:

    - the run's summary holds each validation metric's best value (``val/bits_per_pixel`` and
      ``val/loss`` their minimum, accuracies and PDR their maximum), through W&B's ``define_metric``;
    - every run has a group and a job type: the group defaults to ``<name>-<run id>``, and the
      classifier that ``callbacks.TrainReranker`` trains after the model joins it with job type
      ``reranker`` (``reranker_environment``), so W&B shows the two runs together;
    - no ``anonymous`` setting is passed to ``wandb.init`` unless asked for (W&B warns that it has no effect).

    Args:
        job_type: W&B's job type; default ``$WANDB_JOB_TYPE``, else ``train``.
        group: W&B's run group; default ``$WANDB_RUN_GROUP``, else ``<name>-<run id>``.
        **kwargs: Lightning's ``WandbLogger`` arguments (``project``, ``name``, ``save_dir``, ``id``, ...).
    """

    def __init__(self, *, job_type: str | None = None, group: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        init = self._wandb_init  # what Lightning passes to wandb.init when the run starts
        if init.get("anonymous") is None:
            init.pop("anonymous", None)
        if init.get("id") is None:  # an id chosen now, so that the group can name it before the run starts
            init["id"] = self._id = os.environ.get("WANDB_RUN_ID") or secrets.token_hex(4)
        # W&B reads WANDB_RUN_GROUP and WANDB_JOB_TYPE itself, but only when no value is passed: pass them on.
        self.group = group or os.environ.get("WANDB_RUN_GROUP") or "-".join(filter(None, (self._name, init["id"])))
        self.job_type = job_type or os.environ.get("WANDB_JOB_TYPE") or "train"
        init.update(group=self.group, job_type=self.job_type)
        self._summarised: set[str] = set()  # metrics whose summary is defined already

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._define_best(metrics)
        super().log_metrics(metrics, step)

    def _define_best(self, metrics: Mapping[str, float]) -> None:
        """Makes the summary of each new validation metric its best value, before its first value is logged.

        ``define_metric`` takes no pattern for a summary (W&B applies ``val/acc*`` to nothing), so
        each metric is defined by its full name when it first appears.
        """
        new = [key for key in metrics if key not in self._summarised]
        self._summarised.update(new)
        define = getattr(self.experiment, "define_metric", None)  # a disabled run may lack it
        if define is None:
            return
        # The step axis Lightning gives every metric ("*"); a metric defined by name would lose it.
        step = "global_step" if self._wandb_init.get("sync_tensorboard") else "trainer/global_step"
        for key in new:
            if direction := best_direction(key):
                logged = f"{self._prefix}{self.LOGGER_JOIN_CHAR}{key}" if self._prefix else key  # as Lightning logs it
                define(logged, summary=direction, step_metric=step, step_sync=True)

    def reranker_environment(self) -> dict[str, str]:
        """Environment variables that put a ``train.py`` process's W&B run in this run's group, as the reranker."""
        return {"WANDB_RUN_GROUP": self.group, "WANDB_JOB_TYPE": RERANKER_JOB}


def reranker_environment(trainer) -> dict[str, str]:
    """The W&B group and job type of the reranker trained after ``trainer``'s run; empty without this logger."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return logger.reranker_environment()
    return {}

"""Where a run's length (its step count) and what follows from it are kept: the fit loop's ``max_steps``, the
``transformers`` schedule's ``num_training_steps``, the validation interval and the weight average's decay."""

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import get_ema_avg_fn


def apply_run_length(trainer: L.Trainer, plan: dict[str, Any]) -> None:
    """Sets the loop's, the schedule's, the validations' and the average's settings from the step count.

    Args:
        trainer: The running trainer, changed in place.
        plan: ``max_steps``, and optionally ``check_val_every_n_epoch`` and ``ema_decay``.
    """
    trainer.fit_loop.epoch_loop.max_steps = plan["max_steps"]
    for keywords in schedule_keywords(trainer):
        if "num_training_steps" in keywords:
            keywords["num_training_steps"] = plan["max_steps"]
    if "check_val_every_n_epoch" in plan:
        trainer.check_val_every_n_epoch = plan["check_val_every_n_epoch"]
    if "ema_decay" in plan:
        ema = ema_callback(trainer)
        # EMAWeightAveraging keeps its decay only inside the averaging function it was built with.
        ema._kwargs["avg_fn"] = get_ema_avg_fn(plan["ema_decay"])
        if ema._average_model is not None:
            ema._average_model.avg_fn = ema._kwargs["avg_fn"]


def epoch_bound(trainer: L.Trainer) -> float:
    """The steps ``trainer.max_epochs`` allows (infinite without it)."""
    per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
    return trainer.max_epochs * per_epoch if trainer.max_epochs not in (None, -1) else math.inf


def ema_callback(trainer: L.Trainer) -> EMAWeightAveraging | None:
    """The trainer's ``EMAWeightAveraging``, if it has one."""
    return next((callback for callback in trainer.callbacks if isinstance(callback, EMAWeightAveraging)), None)


def schedule_keywords(trainer: L.Trainer) -> list[dict]:
    """The keyword arguments of each ``transformers`` schedule's function (a ``functools.partial`` in a
    ``LambdaLR``): ``num_warmup_steps`` and ``num_training_steps``, changed in place to set the length."""
    found = []
    for config in trainer.lr_scheduler_configs:
        if isinstance(config.scheduler, LambdaLR):
            found += [
                fn.keywords for fn in config.scheduler.lr_lambdas if isinstance(getattr(fn, "keywords", None), dict)
            ]
    return found

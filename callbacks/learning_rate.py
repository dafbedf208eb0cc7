"""Lightning's ``LearningRateMonitor``, logging one curve for an optimizer whose parameter groups share one rate."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor as LightningLearningRateMonitor
from torch.optim import Optimizer


def shares_one_rate(optimizer: Optimizer, schedulers: list[Any]) -> bool:
    """Whether every parameter group of ``optimizer`` is at the same learning rate at every step.

    True when the groups start from one rate (``initial_lr``, which a scheduler records, else ``lr``)
    and no scheduler moves them apart: a ``LambdaLR`` with one function for all groups (the
    ``transformers`` schedules), or any other scheduler, which applies one formula to each group's
    starting rate. ``MuonAdamW``'s two groups (Muon's matrices, AdamW's rest) are such a pair.
    """
    groups = optimizer.param_groups
    if len(groups) < 2 or len({group.get("initial_lr", group["lr"]) for group in groups}) > 1:
        return False
    for scheduler in schedulers:
        functions = getattr(scheduler, "lr_lambdas", None) or getattr(scheduler, "lr_lambda", None)
        if isinstance(functions, list) and len({id(function) for function in functions}) > 1:
            return False
    return True


class LearningRateMonitor(LightningLearningRateMonitor):
    """Lightning's ``LearningRateMonitor`` (same arguments), where an optimizer whose groups all share
    one learning rate logs it once, as ``lr-<Optimizer>``: Lightning logs ``lr-MuonAdamW/pg1`` and
    ``lr-MuonAdamW/pg2``, the same curve twice. Groups at different rates keep a curve each.

    Which optimizers share is decided once, when training starts, so a metric never changes its name mid-run.
    """

    def on_train_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        super().on_train_start(trainer, *args, **kwargs)
        self._shared: set[int] = set()
        for optimizer in trainer.optimizers:
            configs = trainer.lr_scheduler_configs
            if shares_one_rate(optimizer, [c.scheduler for c in configs if c.scheduler.optimizer is optimizer]):
                self._shared.add(id(optimizer))

    def _get_optimizer_stats(self, optimizer: Optimizer, names: list[str]) -> dict[str, float]:
        stats = super()._get_optimizer_stats(optimizer, names)
        if id(optimizer) not in getattr(self, "_shared", ()):
            return stats
        first, one = names[0], names[0].rpartition("/")[0]  # "lr-MuonAdamW/pg1" -> "lr-MuonAdamW"
        # The first group's values (lr, and momentum or weight decay when asked for) under the optimizer's name.
        return {one + kind: stats[first + kind] for kind in ("", "-momentum", "-weight_decay") if first + kind in stats}

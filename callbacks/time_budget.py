"""Turns the wall-time budget (``trainer.max_time``) into a fixed schedule that ends where the budget ends."""

import math
import time
from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_info

from callbacks.budget_record import save_step_count, write_record
from callbacks.process_clock import process_seconds
from callbacks.run_length import apply_run_length, ema_callback, epoch_bound, schedule_keywords
from callbacks.train_reranker import TrainReranker
from callbacks.validation_cost import time_validation, validation_count

BUDGET_KEYS = ("budget_s", "started_training_s", "reranker_s", "time_cap_s", "reranker_max_time")


class TimeBudgetError(ValueError):
    """The budget cannot be planned with this config; the message says which setting to change."""


class TimeBudget(L.Callback):
    """Fixes the run's step count from ``trainer.max_time`` and this machine's measured speed.

    With ``trainer.max_time`` set and no ``trainer.max_steps``, the first ``calibration_steps`` of the real
    training are timed: they are the run's own first steps, taken inside the learning rate's warm-up,
    which does not depend on the run's length, so timing costs no steps and changes no weight. So is one
    validation (a pass of the validation step that changes nothing, unless a real one came among the
    timed steps). The step count that fits what is left of the budget after the reranker's share, the
    validations and a margin then becomes ``trainer.max_steps`` and the length of the learning-rate
    schedule, so that the schedule ends where the budget does instead of being cut by it.
    ``trainer.max_epochs`` still bounds it. The count goes into the run's ``config.yaml`` and, with the
    timings, into ``time_budget.yaml`` beside it: the same command with ``--trainer.max_steps=N`` repeats
    the run exactly, timing nothing, because with ``max_steps`` given (or only epochs) everything below
    follows that count instead, from the same step.

    What follows the step count (set after the timed steps, in both cases):

    - the schedule's total steps, for schedules built by ``transformers`` (a ``LambdaLR`` whose function
      takes ``num_training_steps``), as :class:`lightning_modules.PixelLM` makes them;
    - ``validations``: ``trainer.check_val_every_n_epoch`` gives about this many per run. The run's last
      step always validates (the annealed end is what ``best.ckpt`` should hold). Early stopping's
      patience counts validations, so with a fixed number per run it stays the same share of the run;
    - ``ema_share``: an ``EMAWeightAveraging`` averages over this share of the steps;
    - ``callbacks.TrainReranker``'s classifier gets ``reranker_share`` of the budget as its own
      ``--trainer.max_time`` and a TimeBudget of its own, which fits its steps, start-up included, into
      that share; so the whole command ends within ``trainer.max_time``. The model's time cap
      (Lightning's ``Timer``) becomes what is left for it: a hard stop, should the machine slow down
      after the timing (``time_budget.yaml`` then says so).

    Args:
        calibration_steps: Steps to time (the first, which warms up, is not counted); fewer when the
            schedule's warm-up is shorter.
        reranker_share: Share of the budget for ``callbacks.TrainReranker`` (ignored without one).
        margin: Share of the budget left unplanned for what is not timed: checkpoint writes, sample
            images, the end of the run.
        validations: Validations per run; None keeps ``trainer.check_val_every_n_epoch``.
        ema_share: Share of the run the weight average covers (``decay = 1 - 1 / (ema_share * steps)``);
            None keeps the ``EMAWeightAveraging`` decay.
        schedule: ``steps`` (the default) fixes the step count once, as above. ``elapsed`` makes the
            schedule follow the clock instead: after every step the count is planned again, from the
            seconds per step so far with validations and checkpoint writes counted in, so the schedule
            anneals when the time is spent even if the machine slows down; the run is then not
            repeatable by its step count (``time_budget.yaml`` says so), and a resume keeps the last count.
            ``bench/budget.py --schedules steps elapsed`` compares the two (docs/results.md#schedule).
    """

    def __init__(
        self,
        calibration_steps: int = 20,
        reranker_share: float = 0.1,
        margin: float = 0.05,
        validations: int | None = None,
        ema_share: float | None = None,
        schedule: Literal["steps", "elapsed"] = "steps",
    ) -> None:
        if calibration_steps < 3:
            raise ValueError(
                f"TimeBudget.calibration_steps: must be 3 or more (the first is not timed), got {calibration_steps}"
            )
        if not 0 <= reranker_share < 1 or not 0 <= margin < 1 or reranker_share + margin >= 1:
            raise ValueError(
                f"TimeBudget: reranker_share ({reranker_share}) and margin ({margin}) must be shares in [0, 1) "
                "that leave the model some of the budget"
            )
        if validations is not None and validations < 1:
            raise ValueError(f"TimeBudget.validations: must be 1 or more, got {validations}")
        if ema_share is not None and not 0 < ema_share <= 1:
            raise ValueError(f"TimeBudget.ema_share: must be in (0, 1], got {ema_share}")
        if schedule not in ("steps", "elapsed"):
            raise ValueError(f"TimeBudget.schedule: 'steps' or 'elapsed', got {schedule!r}")
        self.calibration_steps = calibration_steps
        self.reranker_share = reranker_share
        self.margin = margin
        self.validations = validations
        self.ema_share = ema_share
        self.plan: dict[str, Any] | None = None  # what was decided; saved in checkpoints, so a resume keeps it
        self.schedule = schedule  # "steps": the plan is made once; "elapsed": again after every step
        self._budget: dict[str, Any] = {}  # the budget's split, decided when training starts
        self._steps: int | None = None  # the run's length when given (max_steps, or max_epochs' steps)
        self._apply_at: float = 0  # the step after which the plan takes effect, the same with or without a budget
        self._timed_from: tuple[float, int] | None = None  # the clock and step at the end of the first step
        self._validation_start = 0.0
        self._validation_s: float | None = None  # the last validation among the timed steps, if one came
        self._validating_s = 0.0  # all of their time, left out of the steps' time

    # ----------------------------------------------------------------------------------------- hooks
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The step count must be known while a schedule that decays to the run's end still warms up: the
        # warm-up does not depend on the length. (Validations among the timed steps are timed apart.)
        warmups = [kw.get("num_warmup_steps", 0) for kw in schedule_keywords(trainer) if "num_training_steps" in kw]
        self._apply_at = min([self.calibration_steps, *warmups])
        if next(callback for callback in trainer.callbacks if isinstance(callback, TimeBudget)) is not self:
            self._apply_at = math.inf  # one budget per run: the first TimeBudget plans it
            return
        if self.plan is not None:  # resumed: the plan made before the stop holds
            self._budget = {key: value for key, value in self.plan.items() if key in BUDGET_KEYS}
            self._share_budget(trainer, self.plan)
            apply_run_length(trainer, self.plan)
            return
        timer = _timer(trainer)
        if trainer.max_steps == -1 and timer is not None and timer._duration is not None:
            if self._apply_at < 3:
                raise TimeBudgetError(
                    f"TimeBudget: only {self._apply_at} steps can be timed before the learning-rate schedule needs "
                    "the run's length (its warm-up's steps); raise model.init_args.warmup_steps to 3 or more"
                )
            self._budget = self._split_budget(trainer, timer._duration)
            self._share_budget(trainer, self._budget)
            return
        steps = trainer.estimated_stepping_batches if trainer.max_steps == -1 else trainer.max_steps
        if math.isinf(steps):  # neither steps, epochs nor time bound the run: nothing to follow
            self._apply_at = math.inf
            return
        self._steps = int(steps)
        if self._apply_at == 0 or trainer.global_step >= self._apply_at:
            self._decide(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self.plan is None and self._apply_at != math.inf:
            if self._timed_from is None:  # the clock starts after the first step, which warms up
                self._timed_from = (time.monotonic(), step)
                self._validating_s = 0.0
            if step >= self._apply_at and (self._steps is not None or step - self._timed_from[1] >= 2):
                self._decide(trainer, pl_module)
        elif self.schedule == "elapsed" and self._budget and self._timed_from is not None:
            self._follow_the_clock(trainer)
        timer = _timer(trainer)
        out_of_time = bool(self._budget) and timer is not None and timer.time_remaining() <= 0
        if (self.plan is not None and step == self.plan["max_steps"]) or out_of_time:
            # The last step validates even off the validation epochs: the annealed end is the best model,
            # and a run stopped by the time cap (before any validation, perhaps) still leaves a best.ckpt.
            trainer.check_val_every_n_epoch = 1
            trainer.should_stop = True

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_start = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.plan is None and self._timed_from is not None:  # among the timed steps: timed apart from them
            self._validation_s = time.monotonic() - self._validation_start
            self._validating_s += self._validation_s

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.plan is None and not self._budget:
            return
        record = self.plan or {**self._budget, "max_steps": None}  # None: stopped before the timing ended
        timer = _timer(trainer)
        stopped_by = "early stopping"
        if record["max_steps"] is not None and trainer.global_step >= record["max_steps"]:
            stopped_by = "max_steps"
        elif timer is not None and timer.time_remaining() is not None and timer.time_remaining() <= 0:
            stopped_by = "the time cap (trainer.max_time): the machine was slower than timed"
        ended = {"steps_run": trainer.global_step, "train_end_s": process_seconds(), "stopped_by": stopped_by}
        write_record(trainer.log_dir, {**record, **ended})  # log_dir asked on every rank: it broadcasts

    def state_dict(self) -> dict[str, Any]:
        return {"plan": self.plan}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.plan = state_dict.get("plan")

    # ------------------------------------------------------------------------------------- planning
    def _split_budget(self, trainer: L.Trainer, budget: float) -> dict[str, Any]:
        """The reranker's share and the model's hard time cap, known from the budget alone."""
        now = process_seconds()
        rerankers = any(isinstance(callback, TrainReranker) for callback in trainer.callbacks)
        reranker_s = self.reranker_share * budget if rerankers else 0.0
        timer = _timer(trainer)
        split = {"budget_s": budget, "started_training_s": round(now, 1), "reranker_s": reranker_s}
        # The model's own hard stop: the budget less the reranker's share, should the machine slow down.
        split["time_cap_s"] = timer.time_elapsed() + budget - reranker_s - now
        if rerankers:
            split["reranker_max_time"] = max_time_string(max(1.0, reranker_s))
        return split

    @staticmethod
    def _share_budget(trainer: L.Trainer, split: dict[str, Any]) -> None:
        """Gives the reranker its share and the model's Timer its cap."""
        if "time_cap_s" in split and (timer := _timer(trainer)) is not None:
            timer._duration = split["time_cap_s"]  # Timer keeps its limit only here
        if "reranker_max_time" in split:
            for callback in trainer.callbacks:
                if isinstance(callback, TrainReranker):  # the last --trainer.max_time on its command line wins
                    # Its own TimeBudget fits the classifier's steps, start-up included, into its share, and
                    # validates its last step, so a short share still ends with a best.ckpt.
                    budget = [
                        f"--trainer.max_time={split['reranker_max_time']}",
                        "--trainer.callbacks+=callbacks.TimeBudget",
                    ]
                    callback.args = [*callback.args, *budget]

    def _decide(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Fixes the step count (timing it when there is a budget) and applies what follows from it."""
        plan: dict[str, Any] = {"calibration_steps": self._apply_at}
        if self._steps is None:
            plan.update(self._budget_plan(trainer, pl_module))
            plan["max_steps"] = trainer.strategy.broadcast(plan["max_steps"])  # every device stops at one step
            if self.schedule == "elapsed":
                plan.update(schedule="elapsed", first_planned_steps=plan["max_steps"])
        else:
            plan["max_steps"] = self._steps
        per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
        if self.validations is not None:
            plan["check_val_every_n_epoch"] = self._every(plan["max_steps"], per_epoch, trainer)
        if self.ema_share is not None and ema_callback(trainer) is not None:
            plan["ema_decay"] = max(0.0, 1 - 1 / (self.ema_share * plan["max_steps"]))
        self.plan = plan
        apply_run_length(trainer, plan)
        log_dir = trainer.log_dir  # asked on every rank: it broadcasts rank zero's answer
        if plan.get("schedule") != "elapsed":  # else config.yaml keeps the budget: that, not a count, repeats it
            save_step_count(trainer, log_dir, plan["max_steps"])
        write_record(log_dir, plan)
        timing = (
            f"{plan['seconds_per_step']:.3f} s/step and {plan['validation_s']:.1f} s/validation: "
            if self._budget
            else ""
        )
        rank_zero_info(
            f"TimeBudget: {timing}{plan['max_steps']} steps ({plan['max_steps'] / per_epoch:.1f} epochs)"
            + (f" in the {plan['budget_s']:.0f} s budget" if self._budget else "")
            + (
                "; planned again after every step (schedule: elapsed)"
                if plan.get("schedule") == "elapsed"
                else f"; the same run again: --trainer.max_steps={plan['max_steps']}"
            )
        )

    def _budget_plan(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """The step count that fits the rest of the budget at the speed of the steps timed so far."""
        step = trainer.global_step
        seconds_per_step = (time.monotonic() - self._timed_from[0] - self._validating_s) / (step - self._timed_from[1])
        validation_s = self._validation_s if self._validation_s is not None else time_validation(trainer, pl_module)
        now = process_seconds()
        budget = self._budget["budget_s"]
        left = budget * (1 - self.margin) - self._budget["reranker_s"] - now  # for the model's steps and validations
        per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
        bound = epoch_bound(trainer)
        steps = min(bound, step + max(0, int(left / seconds_per_step)))
        validations = validation_count(steps, per_epoch, self._every(steps, per_epoch, trainer))
        steps = min(bound, step + max(0, int((left - validations * validation_s) / seconds_per_step)))
        if steps <= step:
            rank_zero_info(f"TimeBudget: the {budget:.0f} s budget is used up after {now:.0f} s; training stops here")
        return {
            **self._budget, "seconds_per_step": seconds_per_step, "validation_s": validation_s,
            "planned_at_s": round(now, 1), "max_steps": int(steps),
        }  # fmt: skip

    def _follow_the_clock(self, trainer: L.Trainer) -> None:
        """``schedule="elapsed"``: the step count that fits what is left, at the mean pace since the timing began."""
        step = trainer.global_step
        seconds_per_step = (time.monotonic() - self._timed_from[0]) / (step - self._timed_from[1])
        left = self._budget["budget_s"] * (1 - self.margin) - self._budget["reranker_s"] - process_seconds()
        steps = max(step, min(epoch_bound(trainer), step + int(left / seconds_per_step)))
        steps = trainer.strategy.broadcast(steps)  # on every step and device alike: every device stops at one step
        if steps != self.plan["max_steps"]:
            self.plan["max_steps"] = steps
            apply_run_length(trainer, {"max_steps": steps})

    def _every(self, steps: float, per_epoch: int, trainer: L.Trainer) -> int:
        """Epochs between validations for a run of ``steps``: about ``validations`` in all."""
        if self.validations is None:
            return trainer.check_val_every_n_epoch or 1
        return max(1, round(steps / per_epoch / self.validations))


def max_time_string(seconds: float) -> str:
    """``trainer.max_time``'s ``DD:HH:MM:SS`` for ``seconds`` (whole seconds, rounded down)."""
    seconds = int(seconds)
    return f"{seconds // 86400:02d}:{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _timer(trainer: L.Trainer) -> Timer | None:
    return next((callback for callback in trainer.callbacks if isinstance(callback, Timer)), None)

"""PixelLM's optimizer (AdamW, or Muon for a transformer's hidden matrices and AdamW for the rest, as one
optimizer) and its learning-rate schedule.

Muon (``torch.optim.Muon``) orthogonalises each 2-D weight's momentum with a few Newton-Schulz steps
before the update; it is meant for the matrices inside the blocks, not for embedding tables, the output
head or 1-D weights (norms, biases), which keep AdamW. PyTorch ships both but no optimizer that holds
the two, and Lightning's automatic optimisation steps exactly one optimizer per step (several need manual
optimisation, clipping and accumulation by hand). :class:`MuonAdamW` is that one optimizer: it owns a
:class:`Muon` and a ``torch.optim.AdamW`` and shares their parameter groups, so learning-rate schedulers,
gradient clipping and ``zero_grad`` see every parameter, and its state dict holds both.

Muon runs with ``adjust_lr_fn="match_rms_adamw"`` (Moonshot's scaling: an update of AdamW's typical
size), so one learning rate and weight decay serve both halves.
"""

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup


class Muon(torch.optim.Muon):
    """``torch.optim.Muon`` whose Newton-Schulz iteration runs in float32 on a CPU (bfloat16 on a GPU).

    Why not torch's own step: it always orthogonalises in bfloat16, which a CPU without bfloat16 matrix
    units computes at a few GFLOP/s: on a 2-core AVX2 EPYC at one thread a step of the default config
    took 1.5 s with it and 0.93 s with this float32 iteration. Same update
    (momentum, Nesterov, five quintic steps, decoupled weight decay, the learning-rate scaling), same
    state (``momentum_buffer``), same arguments.
    """

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            buffers: list[torch.Tensor] = []
            self._init_group(group, params, grads, buffers)
            lr, momentum = float(group["lr"]), group["momentum"]
            for param, grad, buffer in zip(params, grads, buffers, strict=True):
                buffer.lerp_(grad, 1 - momentum)
                update = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
                update = orthogonalise(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
                param.mul_(1 - lr * group["weight_decay"])
                param.add_(update.to(param.dtype), alpha=-lr * lr_scale(group["adjust_lr_fn"], param.shape))
        return loss


def orthogonalise(
    matrix: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> torch.Tensor:
    """Muon's quintic Newton-Schulz iteration: ``matrix`` with its singular values pushed towards 1."""
    a, b, c = coefficients
    x = matrix.to(torch.bfloat16 if matrix.is_cuda else torch.float32)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)  # spectral norm at most 1
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def lr_scale(adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """torch's Muon learning-rate adjustment for a ``shape`` matrix: ``original`` or ``match_rms_adamw``."""
    rows, columns = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, columns))
    return math.sqrt(max(1, rows / columns))


def muon_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(hidden matrices, the rest)`` of a causal LM: Muon's and AdamW's shares.

    Hidden matrices are the 2-D weights of every module that is not an embedding table (token, position,
    grid) and not the output head; transformers' GPT-2 ``Conv1D`` counts as a matrix like ``nn.Linear``.
    """
    skip: set[int] = set()
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None:
        skip.update(id(p) for p in output.parameters())
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            skip.update(id(p) for p in module.parameters())
    hidden, rest = [], []
    for parameter in model.parameters():  # each shared (tied) tensor once
        if parameter.requires_grad:
            (hidden if parameter.ndim == 2 and id(parameter) not in skip else rest).append(parameter)
    return hidden, rest


class MuonAdamW(torch.optim.Optimizer):
    """:class:`Muon` over ``hidden`` and ``torch.optim.AdamW`` over ``rest``, stepped together.

    ``param_groups`` are the two optimizers' own group dicts (Muon's first), so a scheduler that sets a
    group's ``lr`` sets it where the step reads it.
    """

    def __init__(
        self,
        hidden: list[nn.Parameter],
        rest: list[nn.Parameter],
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        momentum: float = 0.95,
    ) -> None:
        if not hidden:
            raise ValueError("model.optimizer: muon needs at least one hidden 2-D weight matrix, the model has none")
        self.muon = Muon(hidden, lr=lr, weight_decay=weight_decay, momentum=momentum, adjust_lr_fn="match_rms_adamw")
        self.adamw = torch.optim.AdamW(rest, lr=lr, weight_decay=weight_decay, betas=betas) if rest else None
        # The base class's state stays empty (each inner optimizer keeps its own); its defaults are unused.
        super().__init__(self._inner_groups(), {})

    def _inner(self) -> list[torch.optim.Optimizer]:
        return [self.muon] + ([self.adamw] if self.adamw else [])

    def _inner_groups(self) -> list[dict]:
        """The inner optimizers' own group dicts (the base class keeps these very dicts)."""
        return [group for optimizer in self._inner() for group in optimizer.param_groups]

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = self.muon.step(closure)  # evaluates the closure (Lightning's forward and backward) once
        if self.adamw is not None:
            self.adamw.step()
        return loss

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict() if self.adamw else None}

    def load_state_dict(self, state_dict: dict) -> None:
        if set(state_dict) != {"muon", "adamw"}:
            raise ValueError(
                "optimizer state: not a MuonAdamW state (keys "
                f"{sorted(state_dict)}); was the checkpoint trained with another model.optimizer?"
            )
        for optimizer in self._inner():
            optimizer.load_state_dict(state_dict["muon" if optimizer is self.muon else "adamw"])
        # Loading gives each inner optimizer new group dicts: share those, or a scheduler would set stale ones.
        self.param_groups = self._inner_groups()


def check_optimizer_settings(lr: float, weight_decay: float, warmup_steps: int) -> None:
    """Refuses, when the model is built, values that AdamW or the schedule would reject only once training starts."""
    if not lr > 0:  # also catches NaN
        raise ValueError(f"model.lr: must be greater than 0, got {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"model.weight_decay: must be 0 or more, got {weight_decay}")
    if warmup_steps < 0:
        raise ValueError(f"model.warmup_steps: must be 0 or more, got {warmup_steps}")


def build_optimizer(
    model: nn.Module, kind: Literal["adamw", "muon"], lr: float, weight_decay: float, betas: tuple[float, float]
) -> torch.optim.Optimizer:
    """``torch.optim.AdamW`` over all of ``model`` (a causal LM), or :class:`MuonAdamW` over its
    :func:`muon_parameters`."""
    if kind == "muon":
        return MuonAdamW(*muon_parameters(model), lr=lr, weight_decay=weight_decay, betas=betas)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=betas)


def build_schedule(
    optimizer: torch.optim.Optimizer,
    kind: Literal["constant", "cosine"],
    warmup_steps: int,
    total_steps: int | None = None,
    min_lr_ratio: float = 0.1,
) -> LambdaLR:
    """Linear warm-up over ``warmup_steps``, then ``constant``, or ``cosine`` decay to ``min_lr_ratio`` of the
    peak at ``total_steps`` (transformers' schedules)."""
    if kind == "cosine":
        return get_cosine_with_min_lr_schedule_with_warmup(
            optimizer, warmup_steps, total_steps, min_lr_rate=min_lr_ratio
        )
    return get_constant_schedule_with_warmup(optimizer, warmup_steps)

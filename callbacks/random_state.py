"""Keeps the global random state in checkpoints, so a resumed run draws the same dropout masks."""

from typing import Any

import lightning as L
import torch


class RandomState(L.Callback):
    """Saves torch's global random state (CPU and CUDA) with each checkpoint and restores it on resume.

    Lightning restores weights, optimizer and loop position but not the random state, so after a
    resume dropout would draw other masks than the uninterrupted run and the weights would drift
    apart. The training order does not depend on it (see ``datamodules/epoch_order.py``).
    """

    def state_dict(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict.get("cuda") or []
        if torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)

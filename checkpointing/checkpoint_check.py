"""A clear error for a checkpoint that does not fit the configured model."""

from typing import Any

import torch


class CheckpointMismatchError(ValueError):
    """The checkpoint's weights do not fit the model the config builds (architecture, size or palette)."""


def describe(hparams: Any) -> str:
    """``a gpt2 model (n_layer 2, n_embd 32) with vocab 167``, from a PixelLM's hyperparameters."""
    hp = dict(hparams or {})
    sizes = ", ".join(f"{key} {value}" for key, value in (hp.get("model_config") or {}).items())
    return f"a {hp.get('model_type', 'different')} model{f' ({sizes})' if sizes else ''} with vocab {hp.get('vocab_size', '?')}"


def check_checkpoint(checkpoint: dict[str, Any], module: torch.nn.Module, hparams: Any, source: str) -> None:
    """Raises :class:`CheckpointMismatchError` unless every tensor of ``module`` is in the checkpoint with its shape.

    Caught before ``load_state_dict``, whose own error lists dozens of tensor names and no cause.
    """
    saved = checkpoint.get("state_dict", {})
    expected = module.state_dict()
    missing = [key for key in expected if key not in saved]
    resized = [key for key in expected if key in saved and saved[key].shape != expected[key].shape]
    unexpected = [key for key in saved if key not in expected]
    if not (missing or resized or unexpected):
        return
    if resized:
        key = resized[0]
        detail = f"{key} has shape {tuple(saved[key].shape)}, the model's is {tuple(expected[key].shape)}"
    else:
        detail = f"{len(missing)} tensors missing, {len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]}"
    raise CheckpointMismatchError(
        f"{source}: checkpoint is {describe(checkpoint.get('hyper_parameters'))}, "
        f"the config asks for {describe(hparams)} ({detail})"
    )

"""Completing image prefixes with any Hugging Face causal LM's ``generate``."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from lightning.pytorch.utilities.seed import isolate_rng
from transformers import PreTrainedModel

from generation.decoding import Decoding
from generation.kv_cache import FilledInPlaceCache
from generation.progress import pixel_progress


@torch.inference_mode()
def complete(model: PreTrainedModel, prefixes: torch.Tensor, length: int, decoding: Decoding) -> torch.Tensor:
    """``decoding.best_of`` completions of each ``(B, prefix)`` token prefix to ``length`` tokens:
    ``(B * best_of, length)``, the completions of one prefix in consecutive rows.

    All prefixes share one length, so the batch needs no padding and no attention mask, and the key/value
    cache is allocated once for the whole image (:func:`new_cache`). Sampling is seeded by
    ``decoding.seed`` without touching the global random state. ``model`` is expected in eval mode
    (:func:`evaluating`).
    """
    with isolate_rng():
        torch.manual_seed(decoding.seed)
        return model.generate(
            prefixes.repeat_interleave(decoding.best_of, dim=0),
            max_new_tokens=length - prefixes.shape[1],
            min_new_tokens=length - prefixes.shape[1],
            cache=new_cache(model, length),
            # predict.py's bar over the generated pixels (None elsewhere)
            streamer=pixel_progress(length - prefixes.shape[1], len(prefixes), decoding.best_of),
            **decoding.generate_kwargs(),
        )


def new_cache(model: PreTrainedModel, length: int) -> FilledInPlaceCache | None:
    """A cache filled in place for ``length`` tokens, or None (``generate``'s default) for a sliding window
    shorter than that, which the default cache handles."""
    window = getattr(model.config, "sliding_window", None)
    if window is not None and window < length:
        return None
    return FilledInPlaceCache(length)


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in eval mode (no dropout) inside the block, back in the mode it was in after it."""
    training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(training)

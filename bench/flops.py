"""Training FLOPs per token of a transformers causal LM, counted by Lightning's ``measure_flops``.

``measure_flops`` runs torch's ``FlopCounterMode`` over one training forward and backward: here of one
image, per token of the 399 that a step feeds the model (``seq[:-1]``). It counts the matrix multiplies
(a weight matrix of ``m x n``: ``2mn`` FLOPs a token forward, twice that backward) and the attention's
products; not element-wise work (embedding lookups, norms, softmax, activations, dropout, the loss, the
optimizer), a few per cent at these sizes and not what a matmul peak measures.

The count runs on a copy of the model with transformers' ``eager`` attention, so every query meets all
399 keys (the full masked score matrix), whatever attention the model trains with: what a CPU computes
with attention dropout on, and what nanoGPT's and PaLM's MFU formulas count. The model's own kernels
would be counted differently: without dropout a CPU runs SDPA's fused kernel, which ``FlopCounterMode``
does not count at all (measured on ``llama.yaml``: 4.48 M FLOPs a token instead of 6.93 M), and on a GPU
it counts the fused kernels' backward with the scores recomputed (3.5x the forward, not 3x).
"""

import torch
import torch.nn.functional as F
from lightning.fabric.utilities.throughput import measure_flops
from lightning.pytorch.utilities.seed import isolate_rng
from transformers import AutoModelForCausalLM, PreTrainedModel


def hf_model(model: torch.nn.Module) -> PreTrainedModel:
    """The transformers model inside a PixelLM, or the model itself."""
    return model if hasattr(model, "config") else model.model


def counted_flops_per_token(model: torch.nn.Module, tokens: int | None = None, backward: bool = True) -> float:
    """FLOPs per token of one ``tokens``-long sequence through the model (default: the context length minus
    one, what a training step feeds it), forward and with ``backward`` the backward pass too.

    Args:
        model: A PixelLM or a transformers causal LM; the count runs on a fresh CPU copy built from its config.
        tokens: Tokens of the sequence.
        backward: Count the backward of a cross-entropy loss as well (a training step).
    """
    config = hf_model(model).config
    tokens = tokens or config.max_position_embeddings - 1  # GPT-2 maps max_position_embeddings to n_positions
    with isolate_rng():  # initialising the copy draws from the global generator
        copy = AutoModelForCausalLM.from_config(config, attn_implementation="eager").train()
    inputs = torch.zeros(1, tokens, dtype=torch.long)

    def forward() -> torch.Tensor:
        return copy(input_ids=inputs, use_cache=False).logits

    def loss(logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1), inputs.flatten())

    return measure_flops(copy, forward, loss if backward else None) / tokens


def training_flops_per_token(model: torch.nn.Module, tokens: int | None = None) -> float:
    """FLOPs of one training step (forward and backward) per token; see :func:`counted_flops_per_token`."""
    return counted_flops_per_token(model, tokens, backward=True)


def forward_flops_per_token(model: torch.nn.Module, tokens: int | None = None) -> float:
    """FLOPs of the forward pass alone per token; see :func:`counted_flops_per_token`."""
    return counted_flops_per_token(model, tokens, backward=False)

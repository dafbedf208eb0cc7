"""Training FLOPs per token of a decoder-only transformers model, counted from its config.

Every matrix multiply of one training step, per token of the 399 that a step feeds the model
(``seq[:-1]``), forward and backward. A weight matrix of ``m x n`` costs ``2mn`` FLOPs per token
forward and twice that backward (the gradient of its input and of its weight): 3x in all. The
attention scores (``q @ k^T``) and the weighted sum (``scores @ v``) cost ``2 * heads * head_dim``
each per key attended to, and also 3x with the backward.

Attention over the context: ``context="full"`` (the default) counts every query against all 399
keys, what the kernels compute on a CPU (the mask is applied to a full score matrix), what
``torch.utils.flop_counter.FlopCounterMode`` counts, and what nanoGPT's and PaLM's MFU formulas
count; ``context="causal"`` counts only the keys a query may see (position ``i`` sees ``i`` keys, on
average 200), the work a causal model needs. Not counted: embeddings (a lookup), norms, softmax,
activations, dropout, the loss and the optimizer: element-wise work, a few per cent of the
matmuls' FLOPs at these sizes and not what a matmul peak measures.
"""

from typing import Literal

import torch

Context = Literal["full", "causal"]


def hf_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a PixelLM, or the model itself."""
    return model if hasattr(model, "config") else model.model


def mlp_matrices(model: torch.nn.Module) -> int:
    """Weight matrices in one layer's MLP, read from the built model: 2 for GPT-2, 3 for gated (SwiGLU) MLPs."""
    for name, module in hf_model(model).named_modules():
        if name.endswith(".mlp"):
            return sum(1 for child in module.modules() if is_matmul_weight(child))
    raise ValueError(f"{type(model).__name__}: no '.mlp' module to count the MLP's matrices in")


def is_matmul_weight(module: torch.nn.Module) -> bool:
    """``nn.Linear``, or transformers' ``Conv1D`` (GPT-2's linear layers with a transposed weight)."""
    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"


def mlp_width(config) -> int:
    """The MLP's inner width: ``intermediate_size``, GPT-2's ``n_inner``, or GPT-2's default of 4x the width."""
    return getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * config.hidden_size


def context_length(config, tokens: int, context: Context) -> float:
    """Keys each query attends to, on average over the ``tokens`` positions (a sliding window caps it)."""
    window = getattr(config, "sliding_window", None)
    if getattr(config, "use_sliding_window", True) is False:
        window = None
    seen = [min(position, window or position) for position in range(1, tokens + 1)]
    if context == "full":
        return float(min(tokens, window or tokens))
    return sum(seen) / tokens


def forward_flops_per_token(model: torch.nn.Module, tokens: int | None = None, context: Context = "full") -> dict:
    """Forward FLOPs per token of each part of the model: ``attention_projections``, ``attention_scores``
    (scores and weighted sum), ``mlp``, ``lm_head``, and their ``total``.

    Args:
        model: A PixelLM or a transformers causal LM, built from its config.
        tokens: Tokens per training sequence (default: the context length minus one, what a step feeds).
        context: ``full`` or ``causal`` attention context (see the module's docstring).
    """
    config = hf_model(model).config
    tokens = tokens or config.max_position_embeddings - 1  # GPT-2 maps max_position_embeddings to n_positions
    hidden, layers, heads = config.hidden_size, config.num_hidden_layers, config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    intermediate = mlp_width(config)
    projections = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2  # q, o; k, v
    parts = {
        "attention_projections": 2 * layers * projections,
        "attention_scores": 2 * 2 * layers * heads * head_dim * context_length(config, tokens, context),
        "mlp": 2 * layers * mlp_matrices(model) * hidden * intermediate,
        "lm_head": 2 * hidden * config.vocab_size,
    }
    return {**parts, "total": sum(parts.values())}


def training_flops_per_token(model: torch.nn.Module, tokens: int | None = None, context: Context = "full") -> float:
    """FLOPs of one training step (forward + backward, 3x the forward) per token; see ``forward_flops_per_token``."""
    return 3 * forward_flops_per_token(model, tokens, context)["total"]

"""Causal attention that skips the keys a query cannot see, for training on a CPU.

PyTorch's CPU flash-attention kernel (what SDPA runs for a mask-free causal step) splits the keys into
blocks of 512. An image is 399 tokens, one block, so with ``is_causal=True`` every query still multiplies
all 399 keys and the upper triangle is masked away afterwards: half of the attention arithmetic, forward
and backward, is thrown away. Attention is about 40 % of the default model's CPU training step.

``causal_chunks_sdpa`` cuts the queries into ``n`` chunks and hands chunk ``[s, e)`` only the keys
``[0, e)``, so a query multiplies at most the keys up to the end of its chunk (with 2 chunks, 3/4 of the
square). The first chunk is SDPA's own causal square; the others carry a boolean mask. The result is
the same attention (the same values up to float rounding, tested against SDPA).

It is registered with ``transformers``' ``AttentionInterface`` (and the SDPA mask function with
``AttentionMaskInterface``) under the name ``causal_chunks_sdpa``, the library's way to plug in an
attention function, and it hands everything it does not cover to ``transformers``' own SDPA path: a GPU
(whose flash kernels skip the masked blocks themselves), attention dropout, a mask, a cached decoding step
and any eval-mode call (so validation and generation run exactly SDPA's arithmetic).
"""

from itertools import pairwise

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "causal_chunks_sdpa"
CHUNKS_KEY = "causal_chunks"  # the model config's attribute that gives the number of query chunks


def chunk_bounds(length: int, chunks: int) -> list[int]:
    """Chunk edges ``[0, ..., length]``, the chunks as equal as the length allows."""
    return [round(length * i / chunks) for i in range(chunks + 1)]


def causal_chunks_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    chunks: int,
    scaling: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """Causal attention of ``(B, heads, L, D)`` queries over ``(B, kv_heads, L, D)`` keys and values, the
    queries in ``chunks`` pieces that each see only the keys up to their own end: ``(B, heads, L, D)``."""
    length = query.shape[2]
    bounds = chunk_bounds(length, chunks)
    outputs = []
    for start, end in pairwise(bounds):
        if start == 0:  # a causal square: SDPA's own top-left causal mask is the right one
            mask, is_causal = None, True
        else:  # query start + i sees keys 0 .. start + i
            mask = torch.ones(end - start, end, dtype=torch.bool, device=query.device).tril(diagonal=start)
            is_causal = False
        outputs.append(
            F.scaled_dot_product_attention(
                query[:, :, start:end],
                key[:, :, :end],
                value[:, :, :end],
                attn_mask=mask,
                is_causal=is_causal,
                scale=scaling,
                enable_gqa=enable_gqa,
            )
        )
    return torch.cat(outputs, dim=2)


def causal_chunks_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """``transformers`` attention function: chunked causal attention for a mask-free CPU training step,
    ``sdpa_attention_forward`` for everything else. Returns ``((B, L, heads, D), None)`` like it."""
    chunks = getattr(module.config, CHUNKS_KEY, 1)
    length = query.shape[2]
    covered = (
        chunks > 1
        and module.training
        and query.device.type == "cpu"
        and attention_mask is None
        and dropout == 0.0
        and (is_causal if is_causal is not None else getattr(module, "is_causal", True))
        and key.shape[2] == length >= 2 * chunks
        and kwargs.get("position_bias") is None
        and kwargs.get("softcap") is None
    )
    if not covered:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    groups = getattr(module, "num_key_value_groups", 1)
    output = causal_chunks_attention(query, key, value, chunks, scaling=scaling, enable_gqa=groups > 1)
    return output.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, causal_chunks_sdpa)
AttentionMaskInterface.register(NAME, sdpa_mask)  # the same masks as SDPA: none at all for a plain causal step

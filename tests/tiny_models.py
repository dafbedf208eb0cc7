"""The tiny architectures of the tests, one per model type, and a seeded tiny PixelLM built from them.

One layer, width 16, two heads; the Llama-like ones with grouped-query attention (two query heads
share one key/value head) and a gated MLP, as the shipped configs. Tests that need more (two layers
for a cache that spans layers) override keys: ``tiny_config("llama", num_hidden_layers=2)``.
"""

import json

import torch

from lightning_modules import PixelLM

_LLAMA_LIKE = {
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "hidden_size": 16,
    "intermediate_size": 32,
}
ARCHITECTURES = {
    "gpt2": {"n_layer": 1, "n_head": 2, "n_embd": 16},  # tests/configs/tiny.yaml's
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": {**_LLAMA_LIKE, "head_dim": 8},
}


def tiny_config(model_type: str, **overrides) -> dict:
    """The tiny ``model_config`` of ``model_type``, with ``overrides``."""
    return {**ARCHITECTURES[model_type], **overrides}


def as_option(config: dict) -> str:
    """A model_config as a command-line value: ``--model.init_args.model_config=<this>``."""
    return json.dumps(config)


def tiny_model(model_type: str = "gpt2", model_config: dict | None = None, seq_len: int = 40, prefix_len: int = 24,
               **kwargs) -> PixelLM:  # fmt: skip
    """A PixelLM of the tiny architecture (or ``model_config``), its weights drawn with seed 0.

    40-pixel images with 24-pixel prefixes by default: generation tests run in a blink.
    """
    torch.manual_seed(0)
    config = model_config if model_config is not None else ARCHITECTURES[model_type]
    return PixelLM(model_type=model_type, model_config=config, seq_len=seq_len, prefix_len=prefix_len, **kwargs)

"""The causal LM inside ``PixelLM``: any ``transformers`` architecture, built from its config (not pretrained)."""

from typing import Any

from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from lightning_modules import causal_chunks
from lightning_modules.grid_positions import add_grid_positions

# Keys that name the context length in each architecture's config class.
POSITION_KEYS = {"gpt2": "n_positions"}


def build_config(model_type: str, overrides: dict[str, Any] | None, vocab_size: int, seq_len: int) -> PretrainedConfig:
    """The architecture's config: its defaults, the YAML's keys, and the data's vocabulary and length."""
    try:
        config = AutoConfig.for_model(model_type)
    except ValueError:
        raise ValueError(f"model.model_type: unknown architecture {model_type!r}") from None
    for key in overrides or {}:
        if not hasattr(config, key):
            raise ValueError(f"model.model_config: {model_type} has no config key {key!r}")
    fixed = {
        "vocab_size": vocab_size,
        POSITION_KEYS.get(model_type, "max_position_embeddings"): seq_len,
        # Every id is a colour: no token may end, start or pad a sequence.
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
    }
    return AutoConfig.for_model(model_type, **{**(overrides or {}), **fixed})


def build_causal_lm(
    model_type: str,
    model_config: dict[str, Any] | None,
    vocab_size: int,
    seq_len: int,
    attention_chunks: int = 1,
    grid_positions: bool = False,
    image_width: int = 20,
) -> PreTrainedModel:
    """The causal LM with freshly initialised weights (drawn from torch's global generator), with chunked
    causal attention (:mod:`lightning_modules.causal_chunks`) above one chunk and row and column embeddings
    (:mod:`lightning_modules.grid_positions`) with ``grid_positions``; the arguments are ``PixelLM``'s."""
    config = build_config(model_type, model_config, vocab_size, seq_len)
    attention = {}
    if attention_chunks > 1:
        setattr(config, causal_chunks.CHUNKS_KEY, attention_chunks)
        attention = {"attn_implementation": causal_chunks.NAME}
    model = AutoModelForCausalLM.from_config(config, **attention)
    if grid_positions:
        if image_width < 1 or seq_len % image_width:
            raise ValueError(f"model.image_width: {image_width} does not divide the {seq_len} pixels of an image")
        add_grid_positions(model, seq_len // image_width, image_width)
    return model

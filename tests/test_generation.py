"""Completions through the project's cache equal transformers' own generate, as the course calls it."""

import pytest
import torch

from lightning_modules import Decoding, PixelLM
from lightning_modules.kv_cache import FilledInPlaceCache

ARCHITECTURES = {
    "gpt2": {"n_layer": 2, "n_head": 2, "n_embd": 16},
    "llama": {"num_hidden_layers": 2, "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2},
    "mistral": {"num_hidden_layers": 2, "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "sliding_window": None},
    "qwen3": {"num_hidden_layers": 2, "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 4},
}  # fmt: skip


def tiny_model(model_type: str, **config) -> PixelLM:
    torch.manual_seed(0)
    return PixelLM(model_type=model_type, model_config={**ARCHITECTURES[model_type], **config}, seq_len=40, prefix_len=24)


def course_generate(model: PixelLM, prefixes: torch.Tensor, **kwargs) -> torch.Tensor:
    """The course's way: batches of 2 here (16 there), transformers' default cache, ``max_length``."""
    model.model.eval()
    outputs = [model.model.generate(batch, attention_mask=torch.ones_like(batch), max_length=40, **kwargs) for batch in prefixes.split(2)]
    return torch.cat(outputs)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_greedy_completions_equal_the_course_way(model_type):
    model = tiny_model(model_type)
    prefixes = torch.randint(0, 167, (6, 24))
    completed = model.complete(prefixes, Decoding())
    assert completed.shape == (6, 40)
    assert torch.equal(completed[:, :24], prefixes)
    assert torch.equal(completed, course_generate(model, prefixes, do_sample=False))


def test_sampled_completions_equal_generate_with_its_default_cache():
    model = tiny_model("llama")
    prefixes = torch.randint(0, 167, (6, 24))
    torch.manual_seed(3)
    expected = model.model.generate(prefixes, max_new_tokens=16, min_new_tokens=16, do_sample=True, top_k=50, top_p=0.95)
    completed = model.complete(prefixes, Decoding(do_sample=True, seed=3, top_k=50, top_p=0.95))
    assert torch.equal(completed, expected)


def test_a_sliding_window_shorter_than_an_image_keeps_the_default_cache():
    windowed = tiny_model("mistral", sliding_window=8)
    assert windowed._new_cache() is None  # generate's own sliding-window cache, not a full-length one
    prefixes = torch.randint(0, 167, (4, 24))
    assert torch.equal(windowed.complete(prefixes, Decoding()), course_generate(windowed, prefixes, do_sample=False))
    assert isinstance(tiny_model("mistral")._new_cache(), FilledInPlaceCache)


def test_cache_refuses_more_positions_than_it_holds():
    model = tiny_model("gpt2")
    with pytest.raises(ValueError, match="holds 30 positions"):
        model.model(torch.zeros(1, 31, dtype=torch.long), cache=FilledInPlaceCache(30), use_cache=True)

"""Completions through the project's cache equal transformers' own generate, as the course calls it."""

import pytest
import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from generation.complete import new_cache
from generation.decoding import Decoding, TopKTopPLogitsWarper
from generation.kv_cache import FilledInPlaceCache
from lightning_modules import PixelLM
from tiny_models import tiny_config
from tiny_models import tiny_model as tiny_model_of

# Two layers, so the cache spans layers; Mistral's attention without its sliding window unless a test sets one.
ARCHITECTURES = {
    "gpt2": tiny_config("gpt2", n_layer=2),
    "llama": tiny_config("llama", num_hidden_layers=2),
    "mistral": tiny_config("mistral", num_hidden_layers=2, sliding_window=None),
    "qwen3": tiny_config("qwen3", num_hidden_layers=2),
}


def tiny_model(model_type: str, **config) -> PixelLM:
    return tiny_model_of(model_type, {**ARCHITECTURES[model_type], **config})


def course_generate(model: PixelLM, prefixes: torch.Tensor, **kwargs) -> torch.Tensor:
    """The course's way: batches of 2 here (16 there), transformers' default cache, ``max_length``."""
    model.model.eval()
    outputs = [
        model.model.generate(batch, attention_mask=torch.ones_like(batch), max_length=40, **kwargs)
        for batch in prefixes.split(2)
    ]
    return torch.cat(outputs)


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_greedy_completions_equal_the_course_way(model_type):
    model = tiny_model(model_type)
    prefixes = torch.randint(0, 167, (6, 24))
    completed = model.complete(prefixes, Decoding())
    assert completed.shape == (6, 40)
    assert torch.equal(completed[:, :24], prefixes)
    assert torch.equal(completed, course_generate(model, prefixes, do_sample=False))


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 50, 0.95), (0.7, 20, 0.8), (1.3, 0, 0.9), (1.0, 50, 1.0)])
def test_sampled_completions_equal_generate_with_its_own_cache_and_warpers(temperature, top_k, top_p):
    model = tiny_model("llama")
    prefixes = torch.randint(0, 167, (6, 24))
    torch.manual_seed(3)
    expected = model.model.generate(
        prefixes,
        max_new_tokens=16,
        min_new_tokens=16,
        do_sample=True,
        temperature=temperature,
        top_k=top_k or None,
        top_p=top_p,
    )
    completed = model.complete(
        prefixes, Decoding(do_sample=True, seed=3, temperature=temperature, top_k=top_k, top_p=top_p)
    )
    assert torch.equal(completed, expected)


def library_warpers(temperature: float, top_k: int, top_p: float) -> LogitsProcessorList:
    """What ``generate`` builds from these settings, in its order."""
    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    return warpers


@pytest.mark.parametrize("temperature", [1.0, 0.6, 1.5])
@pytest.mark.parametrize(
    "top_k, top_p", [(50, 0.95), (1, 0.95), (166, 0.5), (167, 0.9), (0, 0.95), (50, 1.0), (0, 1.0)]
)
def test_one_warper_filters_scores_as_transformers_three_do(temperature, top_k, top_p):
    torch.manual_seed(0)
    scores = torch.randn(400, 167) * torch.linspace(0.1, 8, 400)[:, None]  # from nearly flat rows to peaked ones
    expected = library_warpers(temperature, top_k, top_p)(None, scores)
    filtered = TopKTopPLogitsWarper(temperature, top_k, top_p)(None, scores)
    assert torch.equal(filtered, expected)
    kept = (filtered > float("-inf")).sum(dim=1)
    assert kept.min() >= 1 and kept.max() <= (top_k or 167)


def test_a_tie_at_the_kth_score_keeps_every_tied_colour_as_transformers_does():
    torch.manual_seed(0)
    scores = torch.randn(4, 167)
    scores[2] = (torch.arange(167.0) + 1) // 2  # pairs of equal scores: the 5th best ties the 6th
    filtered = TopKTopPLogitsWarper(top_k=5, top_p=0.99)(None, scores)
    assert torch.equal(filtered, library_warpers(1.0, 5, 0.99)(None, scores))
    assert (filtered[2] > float("-inf")).sum() == 6


def test_a_sliding_window_shorter_than_an_image_keeps_the_default_cache():
    windowed = tiny_model("mistral", sliding_window=8)
    assert new_cache(windowed.model, 40) is None  # generate's own sliding-window cache, not a full-length one
    prefixes = torch.randint(0, 167, (4, 24))
    assert torch.equal(windowed.complete(prefixes, Decoding()), course_generate(windowed, prefixes, do_sample=False))
    assert isinstance(new_cache(tiny_model("mistral").model, 40), FilledInPlaceCache)


def test_cache_refuses_more_positions_than_it_holds():
    model = tiny_model("gpt2")
    with pytest.raises(ValueError, match="holds 30 positions"):
        model.model(torch.zeros(1, 31, dtype=torch.long), cache=FilledInPlaceCache(30), use_cache=True)


@pytest.mark.parametrize(
    "settings, message",
    [({"temperature": -1.0}, "temperature"), ({"top_k": -3}, "top_k"), ({"top_p": -0.5}, "top_p")],
)
def test_bad_sampling_settings_raise_transformers_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        TopKTopPLogitsWarper(**settings)

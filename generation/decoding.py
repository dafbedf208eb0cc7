"""How completions are decoded."""

import math
from dataclasses import dataclass, replace

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

# Candidates per prefix: best_of samples them all in one batch, so this many of each of the 80 prefixes
# is already far more than the configs' 16 (or the docs' 32) would ever need.
MAX_BEST_OF = 1024
# Sequences generated at once (a batch's prefixes x best_of). Each holds its key/value cache and its
# prefix's activations: llama.yaml's peak grew by 873 MB for 256 sequences on a CPU (3.4 MB each), so
# the configs' 80 x 16 = 1280 take about 4.4 GB and this bound about 28 GB, not the 100s of GB a
# best_of of thousands would ask for before failing.
MAX_SEQUENCES = 8192


class DecodingError(ValueError):
    """A decoding setting out of its range; the message names it (``decoding.top_p``) and the value."""


@dataclass
class Decoding:
    """Settings for completing image prefixes with ``transformers``' ``generate``.

    Args:
        do_sample: Sample from the model's distribution; False decodes greedily (the course's default).
        temperature: Softmax temperature when sampling; below 1 is more conservative.
        top_k: Sample only among the k likeliest colours; 0 turns the filter off.
        top_p: Sample only within the smallest set of colours whose probability reaches p; 1.0 turns it off.
        seed: Seed for sampling; the same seed gives the same completions.
        best_of: Sample this many completions of each prefix and keep the best: the one the module's
            ``reranker`` (a Pokémon classifier, ``predict.py --reranker``) scores highest, or without
            one, the one with the highest contrast score (``contrast``). 1 keeps the single sample.
        contrast: Without a reranker, best-of-N keeps the completion whose generated pixels have the highest
            mean log-probability under the model minus ``contrast`` times their mean log-probability under
            a bigram of the training images (each pixel given the one before it). 0 keeps the completion
            the model finds likeliest, which is the flattest; 0.5 keeps one the model finds likely for
            this top but a bigram does not: outlines and shading rather than bands of one colour.
        consensus: With best-of-N, keep of the ``consensus`` best-scored candidates of a prefix the one most
            like all N candidates of that prefix: the smallest mean distance between their colours after a
            3 x 3 blur (so a pixel-wide shift costs little). A minimum-Bayes-risk choice: a completion like
            most of what the model draws for this top, not an outlier that happens to score best. 0 or 1
            keeps the best-scored candidate.
    """

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    best_of: int = 1
    contrast: float = 0.0
    consensus: int = 0

    def __post_init__(self) -> None:
        """Checks each setting when it is set: ``generate`` would refuse a bad one only after the model has
        loaded (or at a training's first sample images), in a traceback, and some it never refuses
        (a ``top_p`` of 2 is no filter at all, a negative ``consensus`` silently none)."""
        if self.do_sample and not (math.isfinite(self.temperature) and self.temperature > 0):
            raise DecodingError(
                f"decoding.temperature: must be above 0 when sampling (do_sample), got {self.temperature}"
            )
        if self.top_k < 0:
            raise DecodingError(f"decoding.top_k: must be 0 (no filter) or more, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise DecodingError(f"decoding.top_p: must be above 0 and at most 1 (1: no filter), got {self.top_p}")
        if not 1 <= self.best_of <= MAX_BEST_OF:
            raise DecodingError(f"decoding.best_of: must be 1 to {MAX_BEST_OF}, got {self.best_of}")
        if not math.isfinite(self.contrast):
            raise DecodingError(f"decoding.contrast: must be a finite number, got {self.contrast}")
        if self.consensus < 0:
            raise DecodingError(f"decoding.consensus: must be 0 or more (0 or 1: off), got {self.consensus}")

    def check_batch(self, prefixes: int) -> None:
        """Refuses, before any is drawn, a batch of ``prefixes`` whose ``best_of`` candidates are too many to
        generate at once (:data:`MAX_SEQUENCES`): they would fill the memory, then crash."""
        sequences = prefixes * self.best_of
        if sequences > MAX_SEQUENCES:
            raise DecodingError(
                f"decoding.best_of: {self.best_of} candidates for each of a batch's {prefixes} prefixes "
                f"(data.eval_batch_size) are {sequences} sequences at once, more than {MAX_SEQUENCES}: "
                "lower data.eval_batch_size or decoding.best_of"
            )

    def for_batch(self, first_index: int) -> "Decoding":
        """These settings for a batch starting at image ``first_index``: its seed advances by that index,
        so a file's sampled images are the same whichever entry point completes them."""
        return replace(self, seed=self.seed + first_index)

    def generate_kwargs(self) -> dict:
        """Keyword arguments for ``generate``: sampling filters through ``TopKTopPLogitsWarper``, which
        stands in for ``generate``'s own temperature, top-k and top-p warpers (off here)."""
        if not self.do_sample:
            return {"do_sample": False}
        warpers = LogitsProcessorList([TopKTopPLogitsWarper(self.temperature, self.top_k, self.top_p)])
        return {"do_sample": True, "temperature": 1.0, "top_k": None, "top_p": None, "logits_processor": warpers}


class TopKTopPLogitsWarper(LogitsProcessor):
    """transformers' temperature, top-k and top-p warpers in one, with one ``topk`` a step instead of a
    ``topk`` and then a sort of the whole vocabulary.

    ``generate`` runs its warpers one after another, so top-p sorts all 167 colours although top-k has
    left 50, and on a CPU that sort costs about twice the ``topk`` (a few µs a row, every step: a tenth of
    sampling 80 images with gpt2_sample, 4 % with llama). The scores ``topk`` returns are already in order,
    and below them top-p's ascending sort would hold only ``-inf``, so softmax, cumulative sum and cut-off
    are computed on the very tensor transformers builds: the filtered scores, and with them the completions
    drawn from a seed, are the same. transformers' own warpers, built as ``generate`` would build them,
    check the settings (a bad one raises their ``ValueError``) and filter the steps where a row's ``k``-th
    score ties the next one (top-k then keeps both).
    """

    def __init__(self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> None:
        self.temperature, self.top_k, self.top_p = float(temperature), top_k, top_p
        self.library = LogitsProcessorList()
        if self.temperature != 1.0:
            self.library.append(TemperatureLogitsWarper(self.temperature))
        if top_k:
            self.library.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            self.library.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        scaled = scores / self.temperature if self.temperature != 1.0 else scores
        vocab = scores.shape[-1]
        k = min(self.top_k or vocab, vocab)
        if k == vocab and self.top_p >= 1.0:
            return scaled
        top, indices = scaled.topk(k)  # descending
        if k < vocab and bool(((scaled >= top[:, -1:]).sum(dim=-1) > k).any()):
            return self.library(input_ids, scores)
        keep = torch.ones_like(top, dtype=torch.bool)
        if self.top_p < 1.0:
            # TopPLogitsWarper's ascending sort of the top-k-filtered scores: vocab - k times -inf, then these.
            ascending = torch.cat([top.new_full((len(top), vocab - k), float("-inf")), top.flip(-1)], dim=-1)
            remove = ascending.softmax(dim=-1).cumsum(dim=-1)[:, vocab - k :] <= 1 - self.top_p
            remove[:, -1] = False  # min_tokens_to_keep=1: the likeliest colour stays
            keep = ~remove.flip(-1)
        kept = torch.zeros_like(scaled, dtype=torch.bool).scatter_(-1, indices, keep)
        return scaled.masked_fill(~kept, float("-inf"))

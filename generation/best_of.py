"""Best-of-N decoding: of N completions of each prefix, keeping the best.

A completion is scored by a reranker (a Pokémon classifier, ``predict.py --reranker``) when there is one,
else by the model's own mean log-probability of the generated pixels, less ``decoding.contrast`` times
theirs under the training images' bigram (:func:`likelihood_scores`). ``decoding.consensus`` then keeps,
of the best-scored few, the one most like all N (:func:`mean_distances`). What each rule compares by is
passed in by the caller (``PixelLM`` takes the palette and the training images from its data module).
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F

from datamodules.render import to_rgb
from generation.decoding import Decoding

Scorer = Callable[[torch.Tensor], torch.Tensor]  # (N, seq_len) images -> (N,) scores, higher is better


def keep_best(
    candidates: torch.Tensor,
    given: int,
    decoding: Decoding,
    token_losses: Scorer,
    reranker: Scorer | None = None,
    bigram: torch.Tensor | None = None,
    palette: torch.Tensor | None = None,
    image_width: int = 20,
) -> torch.Tensor:
    """The best of ``(B, N, seq_len)`` candidates per prefix of ``given`` pixels: ``(B, seq_len)``.

    Args:
        candidates: N completions of each of B prefixes.
        given: Pixels of the prefix, the same in all N.
        decoding: ``contrast`` and ``consensus`` say how to choose.
        token_losses: ``(N, seq_len)`` images -> ``(N, seq_len - 1)`` nats of each pixel given those before
            it, under the model; scores the candidates when there is no reranker.
        reranker: Scores images, higher is better; wins over the model's likelihood.
        bigram: ``(vocab, vocab)`` log-probabilities of a pixel given the one before it in the training
            images; needed by ``decoding.contrast``.
        palette: ``(vocab, 3)`` colours of the palette indices; needed by ``decoding.consensus``.
        image_width: Pixels per row, for ``decoding.consensus``'s blur.
    """
    flat = candidates.flatten(0, 1)
    if reranker is not None:
        scores = reranker(flat).to(flat.device)
    else:
        scores = likelihood_scores(flat, given, token_losses, decoding.contrast, bigram)
    scores = scores.view(candidates.shape[:2])
    if decoding.consensus > 1:
        best = scores.topk(min(decoding.consensus, scores.shape[1]), dim=1).indices  # (B, k)
        distances = mean_distances(candidates, palette, image_width).gather(1, best)
        kept = best.gather(1, distances.argmin(dim=1, keepdim=True)).squeeze(1)
    else:
        kept = scores.argmax(dim=1)
    return candidates[torch.arange(len(candidates)), kept]


def likelihood_scores(
    images: torch.Tensor, given: int, token_losses: Scorer, contrast: float = 0.0, bigram: torch.Tensor | None = None
) -> torch.Tensor:
    """``(N,)``: the mean log-probability of the pixels after the first ``given``, less ``contrast`` times
    their mean log-probability under ``bigram`` (outlines and shading rather than bands of one colour)."""
    scores = -token_losses(images)[:, given - 1 :].mean(dim=1)
    if contrast:
        if bigram is None:
            raise ValueError(
                "decoding.contrast: best-of-N needs the training images' bigram; call use_training_images first"
            )
        bigram = bigram.to(images.device)
        scores = scores - contrast * bigram[images[:, given - 1 : -1], images[:, given:]].mean(dim=1)
    return scores


def mean_distances(candidates: torch.Tensor, palette: torch.Tensor | None, width: int) -> torch.Tensor:
    """``(B, N)``: each of ``(B, N, seq_len)`` candidates' mean distance to the N of its prefix, between
    their RGB colours after a 3 x 3 box blur (decoding.consensus). The given pixels are the same in all
    N, so only the generated ones and the blur across the boundary count."""
    count, n, length = candidates.shape
    if length % width:
        raise ValueError(
            f"decoding.consensus: model.image_width {width} does not divide the {length} pixels of an image"
        )
    if palette is None:
        raise ValueError("decoding.consensus: best-of-N compares colours and needs the palette; call use_palette first")
    images = to_rgb(candidates.flatten(0, 1), palette, length // width, width).float()
    blurred = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False).reshape(count, n, -1)
    return torch.cdist(blurred, blurred).mean(dim=2)

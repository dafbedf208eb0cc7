"""Made-up "failed completions" and label-preserving augmentations, on palette-index images.

Every function takes and returns ``(N, height * width)`` long tensors and draws its randomness
from an explicit ``torch.Generator``, so validation can corrupt the dev images the same way
every epoch. A negative keeps the real top (the given prefix) and spoils the rest, because
that is what a bad model does: the course's grader only ever sees real tops.
"""

from collections.abc import Callable

import torch

from datamodules.augmentation import shifted

NEGATIVE_TYPES = ("splice", "markov", "random", "blank", "shift", "noise", "bands")


def fit_bigram(images: torch.Tensor, vocab_size: int, smoothing: float = 0.1) -> torch.Tensor:
    """``(vocab, vocab)`` probabilities of the next pixel given the previous one, in reading order."""
    counts = torch.full((vocab_size, vocab_size), smoothing, dtype=torch.float)
    previous, following = images[:, :-1].reshape(-1), images[:, 1:].reshape(-1)
    counts.index_put_((previous, following), torch.ones(len(previous)), accumulate=True)
    return counts / counts.sum(1, keepdim=True)


def hflip(images: torch.Tensor, width: int, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirrors each image left-right with probability ``p``."""
    flip = torch.rand(len(images), generator=generator) < p
    mirrored = images.view(len(images), -1, width).flip(2).reshape(len(images), -1)
    return torch.where(flip[:, None], mirrored, images)


def translate(images: torch.Tensor, width: int, generator: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Moves each image by up to ``max_shift`` pixels in x and y, filling with background (0)."""
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, len(images)), generator=generator).unbind(0)
    return shifted(images, width, dy, dx, 0)


class Corruptor:
    """Replaces everything after the first ``prefix_len`` pixels with one kind of wrong content.

    Args:
        prefix_len: Pixels kept from the real image.
        width: Pixels per row.
        bigram: ``(vocab, vocab)`` next-pixel probabilities for the ``markov`` type (:func:`fit_bigram`).
    """

    def __init__(self, prefix_len: int, width: int, bigram: torch.Tensor) -> None:
        self.prefix_len = prefix_len
        self.width = width
        self.bigram = bigram
        self.kinds: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
            "splice": self.splice,
            "markov": self.markov,
            "random": self.random,
            "blank": self.blank,
            "shift": self.shift,
            "noise": self.noise,
            "bands": self.bands,
        }

    def __call__(self, images: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
        return self.kinds[kind](images, generator)

    @property
    def vocab_size(self) -> int:
        return len(self.bigram)

    def _bottom(self, images: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        return torch.cat([images[:, : self.prefix_len], bottom], dim=1)

    def splice(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Another image's bottom (a rotation of the batch, so never the image's own)."""
        offset = int(torch.randint(1, max(len(images), 2), (), generator=generator))
        return self._bottom(images, images.roll(offset, 0)[:, self.prefix_len :])

    def markov(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each pixel drawn from the bigram given the one before: right colours, no shape."""
        out = images.clone()
        bigram = self.bigram.to(images.device)
        for position in range(self.prefix_len, images.shape[1]):
            out[:, position] = torch.multinomial(bigram[out[:, position - 1]], 1, generator=generator).squeeze(1)
        return out

    def random(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Uniformly random palette colours."""
        shape = (len(images), images.shape[1] - self.prefix_len)
        return self._bottom(images, torch.randint(0, self.vocab_size, shape, generator=generator))

    def blank(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """All background: the model stopped drawing."""
        return self._bottom(images, torch.zeros_like(images[:, self.prefix_len :]))

    def shift(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each bottom row rolled sideways by 2-5 pixels: the right pixels, torn apart."""
        bottom = images[:, self.prefix_len :].reshape(len(images), -1, self.width)
        rows = bottom.shape[1]
        offsets = torch.randint(2, 6, (len(images), rows, 1), generator=generator)
        offsets = offsets * (torch.randint(0, 2, offsets.shape, generator=generator) * 2 - 1)
        columns = (torch.arange(self.width).view(1, 1, -1) - offsets) % self.width
        return self._bottom(images, bottom.gather(2, columns).reshape(len(images), -1))

    def noise(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The real bottom with 30-80 % of its pixels replaced by random colours."""
        bottom = images[:, self.prefix_len :]
        share = torch.rand(len(images), 1, generator=generator) * 0.5 + 0.3
        hit = torch.rand(bottom.shape, generator=generator) < share
        colours = torch.randint(0, self.vocab_size, bottom.shape, generator=generator)
        return self._bottom(images, torch.where(hit, colours, bottom))

    def bands(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each bottom row one flat colour taken from that row: what greedy decoding tends to draw."""
        bottom = images[:, self.prefix_len :].reshape(len(images), -1, self.width)
        pick = torch.randint(0, self.width, (len(images), bottom.shape[1], 1), generator=generator)
        return self._bottom(images, bottom.gather(2, pick).expand_as(bottom).reshape(len(images), -1))

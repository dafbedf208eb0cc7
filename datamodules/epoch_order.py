"""The order (and mirroring) of the training images: a function of (seed, epoch) alone.

Why not ``DataLoader(shuffle=True)``: Lightning restores the loop position of a run resumed
mid-epoch, but a plain DataLoader keeps no state, so the resumed epoch would start a fresh
random order and train on some images twice and others not at all. Drawing the order from a
generator seeded by (seed, epoch) lets the resumed epoch rebuild the same order and skip
exactly the batches already trained, which makes a resumed run end with the same weights as
an uninterrupted one. The mirroring and shifting of each image are drawn the same way, per
(seed, epoch, index).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler

Position = Callable[[], tuple[int, int]]  # () -> (epoch, batches of it already trained)
Key = tuple[int, bool, int, int]  # (image index, mirror?, rows down, columns right)


@dataclass(eq=False)
class EpochOrder(Sampler[Key]):
    """Yields ``(image index, mirror?, dy, dx)`` in an order fixed by (seed, epoch), from the first untrained batch on.

    Args:
        size: Number of training images.
        batch_size: Images per batch, to turn trained batches into images to skip.
        seed: Seed of the orders (the run's ``seed_everything``).
        hflip: Mirror each image with probability 0.5; False never mirrors.
        shift: Move each image by up to this many pixels down or up (``dy``) and right or left (``dx``),
            each drawn uniformly; 0 never moves.
        position: Where training stands, asked when an epoch's iteration begins; after a resume it
            comes from the checkpoint. None: epoch from ``set_epoch``, nothing skipped.
    """

    size: int
    batch_size: int
    seed: int
    hflip: bool
    position: Position | None = None
    shift: int = 0
    epoch: int = 0  # set by Lightning (set_epoch)

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at each epoch's start."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size  # the full epoch, so Lightning counts its batches as usual

    def order(self, epoch: int) -> list[Key]:
        """The whole epoch's ``(index, mirror?, dy, dx)`` keys."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        indices = torch.randperm(self.size, generator=generator)
        mirror = torch.rand(self.size, generator=generator) < 0.5  # indexed by image, not by position
        # Drawn after the mirroring, so a run without shifts keeps the orders and mirrorings it had before.
        moves = torch.randint(-self.shift, self.shift + 1, (self.size, 2), generator=generator).tolist()
        return [(index, self.hflip and bool(mirror[index]), *moves[index]) for index in indices.tolist()]

    def __iter__(self) -> Iterator[Key]:
        epoch, trained = self.position() if self.position else (self.epoch, 0)
        return iter(self.order(epoch)[trained * self.batch_size :])

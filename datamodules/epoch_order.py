"""The order (and mirroring) of the training images: a function of (seed, epoch) alone.

Why not ``DataLoader(shuffle=True)``: Lightning restores the loop position of a run resumed
mid-epoch, but a plain DataLoader keeps no state, so the resumed epoch would start a fresh
random order and train on some images twice and others not at all. Drawing the order from a
generator seeded by (seed, epoch) lets the resumed epoch rebuild the same order and skip
exactly the batches already trained, which makes a resumed run end with the same weights as
an uninterrupted one. The mirroring of each image is drawn the same way, per (seed, epoch, index).
"""

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

Position = Callable[[], tuple[int, int]]  # () -> (epoch, batches of it already trained)


class EpochOrder(Sampler[tuple[int, bool]]):
    """Yields ``(image index, mirror?)`` in an order fixed by (seed, epoch), from the first untrained batch on.

    Args:
        size: Number of training images.
        batch_size: Images per batch, to turn trained batches into images to skip.
        seed: Seed of the orders (the run's ``seed_everything``).
        hflip: Mirror each image with probability 0.5; False never mirrors.
        position: Where training stands, asked when an epoch's iteration begins; after a resume it
            comes from the checkpoint. None: epoch from ``set_epoch``, nothing skipped.
    """

    def __init__(self, size: int, batch_size: int, seed: int, hflip: bool, position: Position | None = None) -> None:
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.hflip = hflip
        self.position = position
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at each epoch's start."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size  # the full epoch, so Lightning counts its batches as usual

    def order(self, epoch: int) -> list[tuple[int, bool]]:
        """The whole epoch's ``(index, mirror?)`` pairs."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        indices = torch.randperm(self.size, generator=generator)
        mirror = torch.rand(self.size, generator=generator) < 0.5  # indexed by image, not by position
        return [(index, self.hflip and bool(mirror[index])) for index in indices.tolist()]

    def __iter__(self) -> Iterator[tuple[int, bool]]:
        epoch, trained = self.position() if self.position else (self.epoch, 0)
        return iter(self.order(epoch)[trained * self.batch_size :])

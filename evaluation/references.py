"""Reference points for an FID: what copying from the training set scores, and what real images score.

An FID alone says little on 80 images of 20 x 20 pixels: even two sets of real images are far
apart (about 77 with Inception features, dev against the first 80 train images). Two sets, scored
against the same reference images in the same way, put a model's FID in context:

- ``nearest``: every reference image completed by copying the bottom of the training image whose
  top is nearest to its own. A model that has learnt more than a lookup table should beat it.
- ``real``: as many real training images, not completions at all: what a set of real images
  unrelated to the reference scores, the floor of an FID between two independent sets this size.
  Completions are not independent of the reference (they keep its tops, 60 % of each image), so
  they can score below it: the nearest-neighbour copy of the dev split does (about 57 against 77).

Only training images and the reference images' own prefixes are used.
"""

import torch

REFERENCE_NOTES = {
    "nearest": "reference tops + bottom of the training image with the nearest top (a model should beat it)",
    "real": (
        "as many real training images, no completion (two independent real sets; completions keep the tops, "
        "so can go below)"
    ),
}


def nearest_neighbour_completions(
    images: torch.Tensor, train: torch.Tensor, prefix_len: int, palette: torch.Tensor
) -> torch.Tensor:
    """Each image's first ``prefix_len`` pixels, then the rest of the training image whose prefix is nearest.

    Nearest is the smallest squared RGB distance summed over the prefix's pixels and channels: a
    colour a shade off costs little, unlike a count of differing palette indices, which calls
    every colour equally different. Ties go to the earliest training image.

    Args:
        images: ``(N, seq_len)`` palette indices; only their first ``prefix_len`` pixels are read.
        train: ``(M, seq_len)`` training images to copy bottoms from.
        prefix_len: Pixels compared (and kept from ``images``).
        palette: ``(vocab_size, 3)`` RGB colours.
    """
    colours = palette.to(torch.float64)  # squared distances are integers below 2**53: exact in float64
    query = colours[images[:, :prefix_len]].flatten(1)
    keys = colours[train[:, :prefix_len]].flatten(1)
    distances = (query**2).sum(1, keepdim=True) + (keys**2).sum(1) - 2 * query @ keys.T
    nearest = distances.argmin(1)  # the first minimum on ties
    return torch.cat([images[:, :prefix_len], train[nearest, prefix_len:]], dim=1)


def reference_sets(reference: torch.Tensor, train: torch.Tensor, prefix_len: int, palette: torch.Tensor) -> dict:
    """The image sets whose FIDs against ``reference`` are the reference points (see the module's doc)."""
    return {
        "nearest": nearest_neighbour_completions(reference, train, prefix_len, palette),
        "real": train[: len(reference)],
    }

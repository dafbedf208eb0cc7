"""Moving images within their frame: the one shift that training images (``data.shift``) and the
classifier's augmentation (:func:`datamodules.negatives.translate`) both use."""

import torch


def shifted(
    images: torch.Tensor, width: int, dy: torch.Tensor, dx: torch.Tensor, fill: torch.Tensor | int
) -> torch.Tensor:
    """``(N, height * width)`` images, image ``i`` moved ``dy[i]`` rows down and ``dx[i]`` columns right
    (negative: up, left); the pixels moved in take ``fill`` (one colour for all, or ``fill[i]``)."""
    n, height = len(images), images.shape[1] // width
    ys = torch.arange(height).view(1, -1, 1) - dy.view(n, 1, 1)
    xs = torch.arange(width).view(1, 1, -1) - dx.view(n, 1, 1)
    inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    source = ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1)
    moved = images.gather(1, source.reshape(n, -1))
    fill = fill.view(-1, 1) if torch.is_tensor(fill) else fill
    return torch.where(inside.reshape(n, -1), moved, fill)

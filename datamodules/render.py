"""Turning palette-index images into pictures."""

import io
from pathlib import Path

import torch

from files.atomic_write import atomic_write_bytes


def to_rgb(images: torch.Tensor, palette: torch.Tensor, height: int = 20, width: int = 20) -> torch.Tensor:
    """``(N, height * width)`` palette indices → ``(N, 3, height, width)`` uint8 RGB images."""
    colours = palette.to(images.device)[images]  # (N, H*W, 3)
    return colours.view(len(images), height, width, 3).permute(0, 3, 1, 2).contiguous()


def grid(
    images: torch.Tensor,
    palette: torch.Tensor,
    height: int = 20,
    width: int = 20,
    columns: int = 10,
    scale: int = 4,
    boundary_row: int | None = None,
) -> torch.Tensor:
    """A ``(rows * cell, columns * cell, 3)`` uint8 picture of the images, upscaled ``scale`` times.

    Args:
        boundary_row: Draw a red line above this pixel row in each image (where the given prefix ends).
    """
    rgb = to_rgb(images, palette, height, width).repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    if boundary_row is not None:
        rgb[:, :, boundary_row * scale, :] = torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1)
    gap = 2
    rows = -(-len(images) // columns)
    cell_h, cell_w = height * scale + gap, width * scale + gap
    canvas = torch.full((3, rows * cell_h + gap, columns * cell_w + gap), 128, dtype=torch.uint8)
    for i, image in enumerate(rgb):
        top, left = gap + (i // columns) * cell_h, gap + (i % columns) * cell_w
        canvas[:, top : top + height * scale, left : left + width * scale] = image
    return canvas.permute(1, 2, 0).contiguous()


def png_bytes(picture: torch.Tensor) -> bytes:
    """A ``(H, W, 3)`` uint8 picture encoded as a PNG file."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture.numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(picture: torch.Tensor, path: str | Path) -> None:
    """Saves a ``(H, W, 3)`` uint8 picture as a PNG, atomically."""
    atomic_write_bytes(path, png_bytes(picture))

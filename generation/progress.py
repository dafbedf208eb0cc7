"""A progress bar over the pixels that ``generate`` draws, with the time left, for ``predict.py``.

Best-of-16 on the test prefixes is one batch of 1,280 sequences and 160 generation steps: minutes
on a CPU behind Lightning's bar, which moves once per batch. ``generate(streamer=...)`` hands the
streamer each step's tokens; :class:`PixelProgress` counts them on a ``tqdm`` bar. It reads the
tokens and changes nothing, so the completions are the same with or without it.

The bar is shown only inside :func:`showing_progress` (``predict.py``; not validation's or the
sample images' completions during training, which have a bar of their own), only on a terminal,
and never under pytest.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

import torch
from tqdm.auto import tqdm
from transformers.generation import BaseStreamer

_SHOWING: ContextVar[bool] = ContextVar("showing_progress", default=False)


@contextmanager
def showing_progress() -> Iterator[None]:
    """Completions made inside get a progress bar (:func:`pixel_progress`)."""
    token = _SHOWING.set(True)
    try:
        yield
    finally:
        _SHOWING.reset(token)


class PixelProgress(BaseStreamer):
    """A ``generate`` streamer that advances a bar by one pixel per generation step.

    Args:
        new_pixels: Steps ``generate`` will take (its ``max_new_tokens``).
        images: Prefixes being completed.
        best_of: Samples drawn per prefix.
        file: Where the bar is drawn; it is drawn only if this is a terminal, outside pytest.
    """

    def __init__(self, new_pixels: int, images: int, best_of: int = 1, file: TextIO | None = None) -> None:
        file = file or sys.stderr
        each = f" x {best_of} samples" if best_of > 1 else ""
        self.steps = 0  # counted even when no bar is drawn
        self._prompt_seen = False
        self.bar = tqdm(
            total=new_pixels,
            desc=f"Drawing {images} images{each}",
            unit="pixel",
            file=file,
            leave=False,  # Lightning's bar and the "Wrote ..." line say the rest
            disable=not file.isatty() or "PYTEST_CURRENT_TEST" in os.environ,
        )

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate first hands over the prompt: the given pixels
            self._prompt_seen = True
            return
        self.steps += 1
        self.bar.update(1)

    def end(self) -> None:
        self.bar.close()


def pixel_progress(new_pixels: int, images: int, best_of: int = 1) -> PixelProgress | None:
    """A :class:`PixelProgress` for ``generate(streamer=...)`` inside :func:`showing_progress`, else None."""
    return PixelProgress(new_pixels, images, best_of) if _SHOWING.get() else None

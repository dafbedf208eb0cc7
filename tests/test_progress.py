"""predict.py's bar over the generated pixels: it changes no pixel, and shows only on a terminal."""

import io
import re
import time

import torch

import generation.progress as progress
from generation.decoding import Decoding
from lightning_modules import PixelLM
from tiny_models import ARCHITECTURES


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_completions_are_the_same_with_and_without_progress(monkeypatch):
    made = []

    class Recorded(progress.PixelProgress):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(progress, "PixelProgress", Recorded)
    torch.manual_seed(0)
    model = PixelLM("gpt2", ARCHITECTURES["gpt2"])
    prefixes = torch.randint(0, 167, (3, 240))
    decoding = Decoding(do_sample=True, top_k=50, top_p=0.95, seed=7, best_of=2)
    with progress.showing_progress():
        shown = model.complete(prefixes, decoding)
    assert len(made) == 1 and made[0].steps == 160  # the bar was there, and advanced once per generated pixel
    plain = model.complete(prefixes, decoding)
    assert len(made) == 1  # outside showing_progress: no bar (validation, sample images)
    assert shown.shape == (3, 400) and torch.equal(shown, plain)


def test_bar_shows_the_time_left_on_a_terminal(monkeypatch):
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # as outside the tests
    terminal = Terminal()
    bar = progress.PixelProgress(5, images=80, best_of=16, file=terminal)
    bar.put(torch.zeros(1280, 240, dtype=torch.long))  # generate's first call: the given pixels
    for _ in range(5):
        time.sleep(0.12)  # tqdm redraws at most every 0.1 s
        bar.put(torch.zeros(1280, dtype=torch.long))
    bar.end()
    drawn = terminal.getvalue()
    assert "Drawing 80 images x 16 samples" in drawn and "5/5" in drawn
    assert re.search(r"\d\d:\d\d<\d\d:\d\d", drawn)  # elapsed<left


def test_bar_is_silent_off_a_terminal_and_under_pytest():
    for file in (io.StringIO(), Terminal()):  # not a terminal; a terminal, but under pytest
        bar = progress.PixelProgress(5, images=80, file=file)
        for _ in range(6):
            bar.put(torch.zeros(80, dtype=torch.long))
        bar.end()
        assert file.getvalue() == "" and bar.steps == 5

"""The Pokémon pixel sequences as a LightningDataModule."""

import os
import warnings
from functools import cached_property
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.augmentation import shifted
from datamodules.epoch_order import EpochOrder, Key
from datamodules.pixel_files import (
    MAX_IMAGES,
    MAX_NUMBERS,
    SHIPPED_DATA,
    PixelFormatError,
    names,
    parse_palette,
    parse_rows,
    read_images,
    read_palette,
)

# SHIPPED_DATA is row for row what HUB_IMAGES serves (test holds only the 240 given pixels).
HUB_IMAGES = "lca0503/ml2025-hw4-pokemon"
HUB_PALETTE = "lca0503/ml2025-hw4-colormap"
DATA_FILES = ("train.txt", "dev.txt", "test.txt", "colormap.txt")  # what a data_dir holds

# EpochOrder makes mid-epoch resumption exact, but Lightning only knows stateful DataLoaders and would warn.
warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")


class PixelImages(Dataset):
    """Full images as token sequences, each mirrored left-right and moved as its key says.

    Keys are ``(index, mirror?, dy, dx)``, drawn by :class:`EpochOrder`, so that the augmentation
    is a function of (seed, epoch, index) and a resumed run repeats it.
    """

    def __init__(self, images: torch.Tensor, width: int) -> None:
        self.images = images
        self.width = width

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: Key) -> torch.Tensor:
        index, mirror, dy, dx = key
        image = self.images[index]
        if mirror:  # a mirrored Pokémon is still a Pokémon
            image = image.view(-1, self.width).flip(1).reshape(-1)
        if dy or dx:  # and so is one a pixel further down or left; what moves in is the top-left colour
            image = shifted(image[None], self.width, torch.tensor(dy), torch.tensor(dx), image[0])[0]
        return image


class Prefixes(Dataset):
    """``(index, prefix)`` pairs, so predictions can be put back in file order on any number of devices."""

    def __init__(self, prefixes: torch.Tensor) -> None:
        self.prefixes = prefixes

    def __len__(self) -> int:
        return len(self.prefixes)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        return index, self.prefixes[index]


def first_pixels(train: torch.Tensor, vocab_size: int, count: int, seed: int) -> torch.Tensor:
    """``(count, 1)`` first pixels for new Pokémon, each colour drawn as often as ``train``'s images start with it."""
    frequencies = torch.bincount(train[:, 0], minlength=vocab_size).float()
    generator = torch.Generator().manual_seed(seed)
    return torch.multinomial(frequencies, count, replacement=True, generator=generator)[:, None]


class PokemonDataModule(L.LightningDataModule):
    """Serves the 20 x 20 Pokémon images as sequences of palette indices.

    Training batches are full images; validation batches are the full dev images (the module
    scores their last ``seq_len - prefix_len`` tokens and completes their prefixes); prediction
    batches are ``(index, prefix)`` pairs of the test (or dev) split.

    Args:
        data_dir: Folder with ``train.txt``, ``dev.txt``, ``test.txt`` and ``colormap.txt`` (each may
            be gzipped, ``train.txt.gz``); None: the course's split shipped with the project
            (``data/pokemon``). Ignored when ``hub_dataset`` is set.
        hub_dataset: A Hugging Face dataset with splits train/dev/test and a column ``pixel_color``
            (``lca0503/ml2025-hw4-pokemon``), or a local copy of it saved with ``save_to_disk``.
        hub_palette: The palette dataset (column ``color``, one [R, G, B] per row), hub name or local copy.
        image_height: Rows of pixels per image.
        image_width: Pixels per row; horizontal flips mirror each row.
        prefix_len: Pixels given at test time; the rest are generated.
        num_colours: Size the palette must have (the course's is 167); None accepts any size.
        batch_size: Training images per batch.
        eval_batch_size: Images per validation and prediction batch.
        hflip: Mirror training images left-right with probability 0.5.
        shift: Move each training image by up to this many pixels in each direction (drawn uniformly per
            image and epoch), filling with its top-left pixel's colour; 0 never moves.
        num_workers: DataLoader worker processes (0 is fastest for this tiny in-memory data).
        predict_split: Which prefixes prediction completes: ``test``, ``dev``, or ``train`` (e.g. to make a
            classifier's ``negatives_file`` from completions of the training prefixes); ``new`` draws
            brand-new Pokémon from nothing: ``num_new`` images, each from one first pixel.
        num_new: How many new Pokémon ``predict_split: new`` draws.
        new_seed: Seed of the first pixels of new Pokémon, drawn as often as the training images start with
            each colour (84 % start with the background); the model draws the other pixels.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        hub_dataset: str | None = None,
        hub_palette: str | None = None,
        image_height: int = 20,
        image_width: int = 20,
        prefix_len: int = 240,
        num_colours: int | None = 167,
        batch_size: int = 16,
        eval_batch_size: int = 80,
        hflip: bool = False,
        shift: int = 0,
        num_workers: int = 0,
        predict_split: Literal["test", "dev", "train", "new"] = "test",
        num_new: int = 80,
        new_seed: int = 0,
    ) -> None:
        super().__init__()
        if hub_dataset is not None and hub_palette is None:
            hub_palette = HUB_PALETTE if hub_dataset == HUB_IMAGES else None
            if hub_palette is None:
                raise ValueError("data: hub_dataset is set, so hub_palette must name its palette dataset too")
        # Checked here, when set, each naming its key: later they fail deep inside a DataLoader or a
        # reshape, and a zero width would be reported as a bad shift.
        for key, value, least in (
            ("image_height", image_height, 1),
            ("image_width", image_width, 1),
            ("batch_size", batch_size, 1),
            ("eval_batch_size", eval_batch_size, 1),
            ("num_workers", num_workers, 0),
        ):
            if value < least:
                raise ValueError(f"data.{key}: must be {least} or more, got {value}")
        if image_height * image_width > MAX_NUMBERS:  # the files' lines, and the model's positions, are this long
            raise ValueError(
                f"data.image_height x data.image_width: at most {MAX_NUMBERS} pixels, got {image_height * image_width}"
            )
        if not 1 <= prefix_len < image_height * image_width:
            raise ValueError(
                f"data.prefix_len: must be 1 to {image_height * image_width - 1} (the pixels of an image, "
                f"data.image_height x data.image_width, less one), got {prefix_len}"
            )
        if num_colours is not None and num_colours < 1:
            raise ValueError(f"data.num_colours: must be 1 or more (or null: any palette size), got {num_colours}")
        self.data_dir = Path(data_dir) if data_dir is not None else SHIPPED_DATA
        self.hub_dataset = hub_dataset
        self.hub_palette = hub_palette
        self.image_height = image_height
        self.image_width = image_width
        self.prefix_len = prefix_len
        self.num_colours = num_colours
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.hflip = hflip
        if not 0 <= shift < min(image_height, image_width):
            raise ValueError(f"data.shift: must be 0 or more and less than the image's side, got {shift}")
        self.shift = shift
        self.num_workers = num_workers
        self.predict_split = predict_split
        if not 1 <= num_new <= MAX_IMAGES:
            raise ValueError(f"data.num_new: must be 1 to {MAX_IMAGES}, got {num_new}")
        self.num_new = num_new
        self.new_seed = new_seed
        self.splits: dict[str, torch.Tensor] = {}

    @property
    def seq_len(self) -> int:
        """Tokens per image."""
        return self.image_height * self.image_width

    @cached_property
    def palette(self) -> torch.Tensor:
        """``(vocab_size, 3)`` uint8 RGB colours, read on first use."""
        if self.hub_dataset is not None:
            rows = self._hub_split(self.hub_palette, "train")
            return parse_palette((row["color"] for row in rows), f"{self.hub_palette}[train]", self.num_colours)
        return read_palette(self.data_dir / "colormap.txt", self.num_colours)

    def input_files(self) -> list[Path]:
        """The files this module reads, each under both names it may have (``dev.txt`` and ``dev.txt.gz``).

        A run must not write onto them (``predict.py --output``): a completion written as
        ``data/pokemon/dev.txt`` would replace the data, or stand beside the shipped ``dev.txt.gz``.
        Empty for a hub dataset, which is read from the datasets cache.
        """
        if self.hub_dataset is not None:
            return []
        return [path for name in DATA_FILES for path in names(self.data_dir / name)]

    @property
    def vocab_size(self) -> int:
        """Number of palette colours, which is the model's vocabulary."""
        return len(self.palette)

    def prepare_data(self) -> None:
        if self.hub_dataset is not None:  # download once, on one process
            for split in ("train", "dev", "test"):
                self._hub_split(self.hub_dataset, split)
            self._hub_split(self.hub_palette, "train")

    def setup(self, stage: str) -> None:
        if self.splits:
            return
        full, given = self.seq_len, self.prefix_len
        for split, length in (("train", full), ("dev", full), ("test", given)):
            self.splits[split] = self._read_split(split, length)

    def _read_split(self, split: str, length: int) -> torch.Tensor:
        if self.hub_dataset is None:
            return read_images(self.data_dir / f"{split}.txt", length, self.vocab_size)
        rows = self._hub_split(self.hub_dataset, split)
        return parse_rows((row["pixel_color"] for row in rows), f"{self.hub_dataset}[{split}]", length, self.vocab_size)

    @staticmethod
    def _hub_split(name: str, split: str):
        try:
            import datasets
        except ImportError:
            raise ImportError(
                "data: hub_dataset needs the `datasets` package: pip install -r requirements-hub.txt"
            ) from None
        if Path(name).is_dir():  # a local copy written by DatasetDict.save_to_disk
            dataset = datasets.load_from_disk(name)
        else:
            dataset = datasets.load_dataset(name)
        if split not in dataset:
            raise PixelFormatError(f"{name}: no split {split!r} (has {', '.join(dataset)})")
        return dataset[split]

    def train_dataloader(self) -> DataLoader:
        images = PixelImages(self.splits["train"], self.image_width)
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # set by seed_everything
        position = self._position if self.trainer else None
        order = EpochOrder(len(images), self.batch_size, seed, self.hflip, position, self.shift)
        return DataLoader(
            images,
            batch_size=self.batch_size,
            sampler=order,
            drop_last=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # Its own generator: creating an iterator then draws no number from the global one, which
            # would shift the dropout masks of a resumed run against an uninterrupted one.
            generator=torch.Generator(),
        )

    def _position(self) -> tuple[int, int]:
        """(epoch, batches of it already trained): restored from the checkpoint when a run resumes."""
        loop = self.trainer.fit_loop
        return loop.epoch_progress.current.completed, loop.epoch_loop.batch_progress.current.processed

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["dev"], batch_size=self.eval_batch_size)

    def predict_prefixes(self) -> torch.Tensor:
        """What prediction completes: the split's ``(N, prefix_len)`` prefixes, or for ``new`` ``(num_new, 1)``
        first pixels drawn from the training images' first-pixel frequencies with ``new_seed``."""
        if self.predict_split != "new":
            return self.splits[self.predict_split][:, : self.prefix_len]
        return first_pixels(self.splits["train"], self.vocab_size, self.num_new, self.new_seed)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(Prefixes(self.predict_prefixes()), batch_size=self.eval_batch_size)

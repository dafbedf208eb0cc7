"""Writes the completed images as a submission file and a PNG grid beside it."""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from datamodules.pixel_files import format_images
from datamodules.render import grid, png_bytes
from datamodules.submission import validate
from files.atomic_write import atomic_write_files, check_writable
from generation.decoding import Decoding


class PredictionWriter(BasePredictionWriter):
    """Collects ``predict_step``'s ``{"indices", "images"}`` from every device and writes them in input order.

    The output path is checked when the writer is made (a folder in the way, a read-only folder, a
    device or FIFO), and again against the run's inputs (the datamodule's files under both their names,
    the checkpoint) once prediction starts, so that a bad ``--output`` fails before the work, not after
    it. The text file (one image per line) is checked against the format and the given prefixes
    before anything is written, and both files are replaced together and atomically: a run that fails
    or is stopped leaves earlier files as they were, and never a new submission beside an old picture.

    Args:
        output: The text file to write; the PNG grid goes beside it with the suffix ``.png``.
        inputs: Further files the run reads (a config), which the outputs must not replace.
    """

    def __init__(self, output: str | Path, inputs: Iterable[str | Path] = ()) -> None:
        super().__init__(write_interval="epoch")
        self.output = Path(output)
        self.picture = self.output.with_suffix(".png")
        self.inputs = [Path(path) for path in inputs]
        check_writable(self.output, self.inputs)
        check_writable(self.picture, self.inputs)

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Checks the outputs against what the run reads, and the batch best-of-N implies, before the first batch."""
        data = trainer.datamodule
        inputs = getattr(data, "input_files", list)()
        if trainer.ckpt_path:  # known once Lightning has restored it, which is after setup
            inputs.append(Path(trainer.ckpt_path))
        self.inputs = [*self.inputs, *inputs]
        for path in (self.output, self.picture):
            check_writable(path, self.inputs)
        decoding = getattr(pl_module, "decoding", None)
        if isinstance(decoding, Decoding) and data is not None:
            decoding.check_batch(min(data.eval_batch_size, len(data.predict_prefixes())))

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: list[Any], batch_indices: list[Any]
    ) -> None:
        images = self._gather(trainer, predictions)
        if not trainer.is_global_zero:
            return
        data = trainer.datamodule
        prefixes = data.predict_prefixes()
        images = validate(images.tolist(), prefixes, str(self.output), data.seq_len, data.vocab_size)
        given_rows = prefixes.shape[1] // data.image_width  # a red line where the given pixels end
        picture = grid(images, data.palette, data.image_height, data.image_width, boundary_row=given_rows or None)
        atomic_write_files({self.output: format_images(images).encode(), self.picture: png_bytes(picture)}, self.inputs)
        drawn = "new Pokémon" if data.predict_split == "new" else "completed images"
        print(f"Wrote {len(images)} {drawn} to {self.output} and a picture of them to {self.picture}")

    @staticmethod
    def _gather(trainer: L.Trainer, predictions: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """All devices' images, sorted by input index, each index once."""
        indices = torch.cat([p["indices"] for p in predictions])
        images = torch.cat([p["images"] for p in predictions])
        # Devices may hold different numbers of images: pad to a common size (index -1) to all-gather.
        size = trainer.strategy.all_gather(torch.tensor(len(indices), device=trainer.strategy.root_device)).max()
        pad = int(size) - len(indices)
        indices = torch.cat([indices, indices.new_full((pad,), -1)])
        images = torch.cat([images, images.new_zeros((pad, images.shape[1]))])
        strategy = trainer.strategy
        indices = strategy.all_gather(indices.to(strategy.root_device)).reshape(-1).cpu()
        images = strategy.all_gather(images.to(strategy.root_device)).reshape(-1, images.shape[1]).cpu()
        # A sampler that repeats images to even out devices gives some index twice: keep the first.
        order = indices.argsort(stable=True)
        indices, images = indices[order], images[order]
        keep = indices >= 0
        keep[1:] &= indices[1:] != indices[:-1]
        return images[keep]

"""The PixelLM an exported folder (:mod:`checkpointing.export_format`) builds, without any YAML."""

from checkpointing.checkpoint_check import CheckpointMismatchError
from checkpointing.export_format import read_export
from checkpointing.exported_weights import check_weights_header
from generation.decoding import Decoding
from lightning_modules.pixel_lm import PixelLM


class ExportedPixelLM(PixelLM):
    """A PixelLM with the architecture of an exported folder: what ``--ckpt_path FOLDER`` without ``--config`` builds.

    Built from ``pixel_lm.json``; the CLI then loads the folder's weights and checks its palette.

    Args:
        folder: The folder ``export.py`` wrote.
        vocab_size: Palette size; linked from the data module, and must be the folder's.
        seq_len: Tokens per image; linked from the data module, and must be the folder's.
        prefix_len: Tokens given at test time; linked from the data module, and must be the folder's.
        decoding: How predictions are decoded (default: the folder's settings).
    """

    def __init__(
        self,
        folder: str,
        vocab_size: int = 167,
        seq_len: int = 400,
        prefix_len: int = 240,
        decoding: Decoding | None = None,
    ) -> None:
        export = read_export(folder)
        given = {"vocab_size": vocab_size, "seq_len": seq_len, "prefix_len": prefix_len}
        for key, value in given.items():
            if export.hparams[key] != value:
                raise CheckpointMismatchError(
                    f"{folder}: the exported model has {key} {export.hparams[key]}, the data {value}"
                )
        check_weights_header(export)  # the sizes the model is built with, before it takes their memory
        decoding = decoding or export.decoding
        super().__init__(
            model_type=export.model_type, model_config=export.model_config, decoding=decoding, **export.layout, **given
        )
        # A PixelLM's hyperparameters, not this constructor's (what describe() and error messages read).
        self.save_hyperparameters({**export.hparams, **export.layout, "decoding": decoding})

"""Export a trained model as a folder that cannot carry code: ``python export.py --out llama_export/``.

Takes the newest run's ``best.ckpt`` and its config unless ``--ckpt_path`` (and ``--config``) say
otherwise. The folder holds Hugging Face's ``config.json`` and ``model.safetensors`` of the causal LM,
with the weights the checkpoint holds (the EMA average, for configs that average),
``generation_config.json`` with the config's ``decoding``, a model card (``README.md``) and
``pixel_lm.json``: architecture, sizes, palette, decoding and what the checkpoint tells of its
training. Share it instead of a ``.ckpt``, which is a pickle: ``predict.py --ckpt_path llama_export/``
and ``evaluate.py`` take it with no config and read only its JSON and safetensors, and plain
``transformers`` loads it and generates the same pixels, or refuses it where it cannot
(:mod:`checkpointing.export_format`).
"""

from callbacks.wandb_artifact import log_artifact
from checkpointing import CheckpointError, load_checkpoint
from checkpointing.export_format import read_export
from checkpointing.export_writer import check_destination, export_pixel_lm
from checkpointing.loading import load_weights_from
from checkpointing.model_card import training_record
from cli.errors import reported_errors
from cli.predict import PredictCLI
from lightning_modules import PixelLM


class ExportCLI(PredictCLI):
    """PredictCLI's set-up (config, checkpoint look-up, decoding options) plus where to write."""

    def add_arguments_to_parser(self, parser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument("--out", type=str, required=True, help="Folder to write (built beside it, then renamed).")
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="Replace --out if it exists and is not empty (only a folder export.py wrote).",
        )


@reported_errors()  # bad input: one line "error: ...", status 2
def main(args: list[str] | None = None) -> None:
    cli = ExportCLI(args)
    check_destination(cli.config.out, cli.config.overwrite)  # before the checkpoint is read: --out . and the like
    if not isinstance(cli.model, PixelLM):
        raise CheckpointError(
            f"{cli.config.ckpt_path}: only a PixelLM can be exported, not a {type(cli.model).__name__}"
        )
    if cli.checkpoint_file:  # an exported folder's weights are loaded already
        checkpoint = load_checkpoint(cli.checkpoint_file, "PixelLM")
        load_weights_from(cli.model, checkpoint, cli.checkpoint_file)
        configs = [str(file) for file in cli.config.get("config") or []]
        training = training_record(checkpoint, cli.checkpoint_file, configs)
    else:  # re-exporting a folder keeps its record
        training = read_export(cli.config.ckpt_path).training
    out = export_pixel_lm(cli.model, cli.datamodule.palette, cli.config.out, cli.config.overwrite, training)
    print(f"Exported {cli.config.ckpt_path} to {out}/ (predict with: python predict.py --ckpt_path {out})")
    if cli.config.wandb_artifact:
        log_artifact([out], "model", cli.config.ckpt_path)


if __name__ == "__main__":
    main()

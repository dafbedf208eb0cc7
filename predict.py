"""Complete the test images and write the submission: ``python predict.py --config configs/llama.yaml``.

Uses the newest run's ``checkpoints/best.ckpt`` unless ``--ckpt_path`` says otherwise, and the
config's ``decoding`` (override with ``--model.init_args.decoding.do_sample=true`` and friends).
Writes ``submission.txt`` (``--output``) and a PNG grid of the completions beside it.
"""

from pathlib import Path

from callbacks import PredictionWriter
from callbacks.wandb_artifact import log_artifact
from cli import PixelCLI, reported_errors, stopped_by_signals
from generation.progress import showing_progress


def main(args: list[str] | None = None) -> None:
    cli = PixelCLI("predict", args=args)
    cli.trainer.callbacks.append(PredictionWriter(cli.config.output))
    with showing_progress():  # a bar per generated pixel, with the time left (on a terminal)
        cli.trainer.predict(
            cli.model, datamodule=cli.datamodule, ckpt_path=cli.checkpoint_file, return_predictions=False
        )
    if cli.config.wandb_artifact:
        kind = "submission" if cli.config.split == "test" else f"{cli.config.split}-completions"
        log_artifact([Path(cli.config.output), Path(cli.config.output).with_suffix(".png")], kind, cli.config.ckpt_path)


if __name__ == "__main__":
    # bad input: one line "error: ...", exit status 2; SIGTERM / Ctrl-C: 143 / 130, earlier outputs kept
    with reported_errors(), stopped_by_signals():
        main()

"""Complete the test images and write the submission: ``python predict.py --config configs/llama.yaml``.

Uses the newest run's ``checkpoints/best.ckpt`` unless ``--ckpt_path`` says otherwise, and the
config's ``decoding`` (override with ``--model.init_args.decoding.do_sample=true`` and friends).
Writes ``submission.txt`` (``--output``) and a PNG grid of the completions beside it.
"""

from pathlib import Path

from callbacks import PredictionWriter
from callbacks.wandb_artifact import log_artifact
from cli.errors import reported_errors
from cli.predict import PredictCLI
from generation.progress import showing_progress


@reported_errors()  # bad input: one line "error: ...", status 2; SIGTERM / Ctrl-C: 143 / 130, earlier outputs kept
def main(args: list[str] | None = None) -> None:
    cli = PredictCLI(args)
    cli.trainer.callbacks.append(PredictionWriter(cli.config.output))
    with showing_progress():  # a bar per generated pixel, with the time left (on a terminal)
        cli.trainer.predict(
            cli.model, datamodule=cli.datamodule, ckpt_path=cli.checkpoint_file, return_predictions=False
        )
    if cli.config.wandb_artifact:
        kind = "submission" if cli.config.split == "test" else f"{cli.config.split}-completions"
        log_artifact([Path(cli.config.output), Path(cli.config.output).with_suffix(".png")], kind, cli.config.ckpt_path)


if __name__ == "__main__":
    main()

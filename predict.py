"""Complete the test images and write the submission: ``python predict.py --config configs/llama.yaml``.

Uses the newest run's ``checkpoints/best.ckpt`` unless ``--ckpt_path`` says otherwise, and the
config's ``decoding`` (override with ``--model.init_args.decoding.do_sample=true`` and friends).
Writes ``submission.txt`` (``--output``) and a PNG grid of the completions beside it.
"""

from callbacks import PredictionWriter
from cli.errors import reported_errors
from cli.predict import PredictCLI


@reported_errors()  # bad input: one line "error: ...", status 2; SIGTERM / Ctrl-C: 143 / 130, earlier outputs kept
def main(args: list[str] | None = None) -> None:
    cli = PredictCLI(args)
    cli.trainer.callbacks.append(PredictionWriter(cli.config.output))
    cli.trainer.predict(cli.model, datamodule=cli.datamodule, ckpt_path=cli.checkpoint_file, return_predictions=False)


if __name__ == "__main__":
    main()

"""Train a model: ``python train.py --config configs/llama.yaml [--key value ...]``."""

from cli import PixelCLI, reported_errors


def main(args: list[str] | None = None) -> None:
    cli = PixelCLI("fit", args=args)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)


if __name__ == "__main__":
    with reported_errors():  # bad input: one line "error: ...", exit status 2
        main()

"""Train a model: ``python train.py --config configs/llama.yaml [--key value ...]``."""

from cli import PixelCLI


def main(args: list[str] | None = None) -> None:
    cli = PixelCLI("fit", args=args)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)


if __name__ == "__main__":
    main()

"""Train a model: ``python train.py --config configs/llama.yaml [--key value ...]``."""

from cli.errors import reported_errors
from cli.fit import FitCLI


@reported_errors()  # bad input: one line "error: ...", status 2; SIGTERM / Ctrl-C: 143 / 130
def main(args: list[str] | None = None) -> None:
    FitCLI(args).fit()


if __name__ == "__main__":
    main()

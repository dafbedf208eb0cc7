"""LightningCLI for the project's models and data: what training and prediction share."""

import sys

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.io import CheckpointIO

from checkpointing.io import AtomicCheckpointIO
from cli import quiet_warnings, round_trip_yaml
from cli.config_files import with_config_files
from cli.errors import ConfigError
from cli.freed_memory import keep_freed_memory
from datamodules import PokemonDataModule
from lightning_modules import PixelLM, PokemonClassifier  # noqa: F401 (short class names in configs: --model PixelLM)


def option_value(args: list[str], option: str) -> str | None:
    """The value given for ``--option`` (``--option X`` or ``--option=X``), the last one if repeated."""
    value = None
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value


class PixelCLI(LightningCLI):
    """LightningCLI over any LightningModule of the project (``PixelLM``, ``PokemonClassifier``) and
    ``PokemonDataModule``, with ``--ckpt_path``, configs found by name, one-line config errors and atomic
    checkpoint saves. ``cli.fit.FitCLI`` and ``cli.predict.PredictCLI`` say what the checkpoint is for.

    Args:
        args: The command line (default: ``sys.argv[1:]``); ``--config NAME`` is a config of the
            project's ``configs/`` (``cli.config_files``).
    """

    ckpt_default: str | None = None  # --ckpt_path when none is given
    ckpt_help = ""

    def __init__(self, args: list[str] | None = None, **kwargs) -> None:
        quiet_warnings.install()  # no false alarms from the libraries; warnings about the user's input still show
        keep_freed_memory()
        round_trip_yaml.install()  # config.yaml reads back as written (a run id like 641818e8 stays a string)
        # A config error raises instead of printing the 100-line usage; cli.errors shortens it to one line.
        kwargs.setdefault("parser_kwargs", {"exit_on_error": False})
        # Any LightningModule whose __init__ takes the linked data keys.
        super().__init__(LightningModule, PokemonDataModule, subclass_mode_model=True, run=False, args=args, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        args = with_config_files(sys.argv[1:] if args is None else list(args))
        self.config = parser.parse_args(self.completed_args(args))

    def completed_args(self, args: list[str]) -> list[str]:
        """The command line as parsed: ``PredictCLI`` adds the config of the run it predicts with."""
        return args

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for key in ("vocab_size", "seq_len", "prefix_len"):
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")
        parser.add_argument("--ckpt_path", type=str | None, default=self.ckpt_default, help=self.ckpt_help)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as error:  # a class rejected its config value; jsonargparse wraps that in union noise
            while error.__cause__ is not None:
                error = error.__cause__
            raise ConfigError(str(error)) from None

    def instantiate_trainer(self, **kwargs) -> Trainer:
        """The trainer, saving checkpoints with :class:`AtomicCheckpointIO` unless the config names a CheckpointIO."""
        plugins = kwargs.pop("plugins", None) or self._get(self.config_init, "trainer", default={}).get("plugins")
        plugins = list(plugins) if isinstance(plugins, list) else [] if plugins is None else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(AtomicCheckpointIO())
        return super().instantiate_trainer(plugins=plugins, **kwargs)

"""The prediction command line: which checkpoint and config to predict with, and what to write."""

from pathlib import Path
from typing import Literal

from lightning.pytorch.cli import LightningArgumentParser

from checkpointing import load_checkpoint
from checkpointing.checkpoint_check import check_checkpoint
from checkpointing.export_format import decoding_args, is_exported, read_export
from checkpointing.exported_weights import load_exported_weights
from checkpointing.run_folders import RUNS, is_inside, model_kind, newest_checkpoint, newest_model_run, run_reranker
from cli.base import PixelCLI, option_value
from cli.errors import ConfigError

OUTPUTS = {"test": "submission.txt", "new": "new_pokemon.txt"}  # else <split>_completions.txt


class PredictCLI(PixelCLI):
    """LightningCLI for ``predict.py`` (and ``evaluate.py``, ``export.py``): a checkpoint, the config to
    build its model, and ``--split``, ``--output``, ``--reranker``.

    Without ``--config`` the config is the one saved in the run whose checkpoint is used, read only
    from a run under ``runs/`` or ``--trainer.default_root_dir`` (a YAML can name any code to run; a
    run from elsewhere needs ``--config``); ``--ckpt_path FOLDER`` (``export.py``'s) builds the folder's
    architecture with its decoding as defaults and reads no YAML at all. Nothing at all takes the
    newest trained run under ``runs/`` and its best checkpoint.

    Args:
        args: The command line (default: ``sys.argv[1:]``).
    """

    ckpt_default = "best"
    ckpt_help = (
        "Checkpoint to predict with: a path, 'last'/'best' for that checkpoint of the newest run under "
        "trainer.default_root_dir, or a folder written by export.py."
    )

    def __init__(self, args: list[str] | None = None, **kwargs) -> None:
        kwargs.setdefault("save_config_callback", None)  # predicting is no run: no config.yaml to write
        super().__init__(args, **kwargs)

    def completed_args(self, args: list[str]) -> list[str]:
        ckpt_path = option_value(args, "--ckpt_path")
        if option_value(args, "--config") is not None:
            # A run's config.yaml says ckpt_path: null (it started fresh); it must not undo --ckpt_path given before it.
            return args if ckpt_path is None else [*args, "--ckpt_path", ckpt_path]
        if any(arg in ("-h", "--help", "--print_config") for arg in args):
            return args
        if is_exported(ckpt_path):
            folder = ["--model=checkpointing.exported.ExportedPixelLM", f"--model.init_args.folder={ckpt_path}"]
            return [*folder, *decoding_args(read_export(ckpt_path)), *args]
        roots = [RUNS] + [Path(root) for root in [option_value(args, "--trainer.default_root_dir")] if root]
        if ckpt_path not in (None, "best", "last"):
            run = Path(ckpt_path).parent.parent
            if Path(ckpt_path).parent.name != "checkpoints" or not (run / "config.yaml").is_file():
                raise FileNotFoundError(f"--ckpt_path {ckpt_path}: no config.yaml in its run folder; pass --config")
            if not is_inside(run, roots):
                raise ConfigError(
                    f"--ckpt_path {ckpt_path}: its run is not under {' or '.join(f'{root}/' for root in roots)}, "
                    f"and a config.yaml can name any code to run, so it is not read unasked: pass --config "
                    f"{run / 'config.yaml'} if you trust it, or a config of your own"
                )
            return ["--config", str(run / "config.yaml"), *args]
        root = roots[-1]
        run = newest_model_run(root)
        if run is None:
            raise FileNotFoundError(
                f"no --config given and no trained run under {root}/: train one first "
                "(python train.py --config configs/llama.yaml) or pass --config"
            )
        checkpoint = run / "checkpoints" / f"{ckpt_path or 'best'}.ckpt"
        print(f"No --config given: using the newest run, {run} (its config.yaml and {checkpoint.name})")
        return ["--config", str(run / "config.yaml"), *args, "--ckpt_path", str(checkpoint)]

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.add_argument(
            "--split",
            type=Literal["test", "dev", "train", "new"] | None,
            default=None,
            help="Prefixes to complete; sets data.predict_split (default: its value, test). train: e.g. a classifier's "
            "negatives_file. new: draw data.num_new (80) brand-new Pokémon from nothing.",
        )
        parser.add_argument(
            "--output",
            type=str | None,
            default=None,
            help="File to write (a PNG grid goes beside it); default: submission.txt for test, "
            "new_pokemon.txt for new, <split>_completions.txt for dev and train.",
        )
        parser.add_argument(
            "--reranker",
            type=str | None,
            default=None,
            help="PokemonClassifier checkpoint, or its runs folder (runs/classifier: the newest run's "
            "best.ckpt), that keeps the best of model.init_args.decoding.best_of samples per prefix "
            "(default: the model's own likelihood decides).",
        )
        parser.add_argument(
            "--wandb_artifact",
            type=bool,
            default=False,
            help="Also log what is written (the submission and its PNG; export.py: the folder) as a W&B artifact, "
            "in the project and group of the model's run; offline without a W&B login (upload: wandb sync).",
        )

    def before_instantiate_classes(self) -> None:
        config = self.config
        root = Path(config.trainer.default_root_dir or RUNS)
        config.ckpt_path = str(self._checkpoint(root, config.ckpt_path or self.ckpt_default))  # null in a run's config
        if not is_exported(config.ckpt_path):
            load_checkpoint(config.ckpt_path, model_kind(config.model.class_path))
        config.trainer.logger = False  # predicting is not a training run
        if config.split is not None:
            config.data.predict_split = config.split
        split = config.split = config.data.predict_split
        config.output = config.output or OUTPUTS.get(split, f"{split}_completions.txt")
        if config.reranker and Path(config.reranker).is_dir():
            config.reranker = str(self._reranker_checkpoint(Path(config.reranker)))
        elif config.reranker is None:
            config.reranker = self._default_reranker(config)

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        if is_exported(self.config.ckpt_path):
            load_exported_weights(self.model, Path(self.config.ckpt_path), self.datamodule.palette)
        else:  # before Lightning's load_state_dict, whose error lists dozens of tensor names
            check_checkpoint(
                load_checkpoint(self.config.ckpt_path), self.model, self.model.hparams, self.config.ckpt_path
            )
        if self.config.reranker:
            from evaluation.scoring import classifier_scorer  # only prediction needs the judge

            self.model.reranker = classifier_scorer(self.config.reranker)

    @property
    def checkpoint_file(self) -> str | None:
        """``--ckpt_path`` for Lightning to load; None for an exported folder, whose weights are loaded already."""
        return None if is_exported(self.config.ckpt_path) else self.config.ckpt_path

    @staticmethod
    def _checkpoint(root: Path, ckpt_path: str) -> Path:
        if ckpt_path in ("best", "last"):
            found = newest_checkpoint(root, ckpt_path)
            if found is None:
                raise FileNotFoundError(
                    f"no {ckpt_path}.ckpt in any run under {root}: train first, or pass --ckpt_path"
                )
            return found
        if not Path(ckpt_path).is_file() and not is_exported(ckpt_path):
            raise FileNotFoundError(f"--ckpt_path: {ckpt_path} does not exist")
        return Path(ckpt_path)

    @staticmethod
    def _reranker_checkpoint(root: Path) -> Path:
        """The newest classifier run's best.ckpt under ``root``, as ``--ckpt_path best`` finds the model's."""
        found = newest_checkpoint(root, "best")
        if found is None:
            raise FileNotFoundError(
                f"--reranker: no checkpoints/best.ckpt in any run under {root} "
                "(train one: python train.py --config configs/classifier.yaml)"
            )
        print(f"Reranking with {found}")
        return found

    @staticmethod
    def _default_reranker(config) -> str | None:
        """Best-of-N without ``--reranker``: the classifier trained with the model (``callbacks.TrainReranker``)."""
        decoding = config.model.init_args.get("decoding") or {}
        best_of, contrast = (decoding.get(key, default) for key, default in (("best_of", 1), ("contrast", 0.0)))
        if best_of <= 1:
            return None
        found = run_reranker(Path(config.ckpt_path))
        if found is None:
            print(
                f"best_of={best_of} and no reranker in this run: keeping the sample the model itself scores best "
                f"(decoding.contrast={contrast}); --reranker CLASSIFIER keeps the one a classifier does"
            )
            return None
        print(f"Reranking with {found} (trained with the model)")
        return str(found)

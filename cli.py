"""The command line shared by ``train.py`` and ``predict.py``: LightningCLI plus run folders.

Each training run gets its own folder, ``<trainer.default_root_dir>/version_<N>``, holding
``checkpoints/``, the resolved ``config.yaml``, W&B's files and sample images. ``--ckpt_path last``
resumes the newest run in its own folder (and its own W&B run); ``predict.py`` finds the newest
run's best checkpoint by itself.
"""

import atexit
import ctypes
import os
import signal
import sys
from argparse import ArgumentError
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from jsonargparse import Namespace
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from callbacks.time_budget import TimeBudgetError
from callbacks.train_reranker import RerankerError
from checkpointing.io import AtomicCheckpointIO, CheckpointReadError
from checkpointing import CheckpointError, load_checkpoint
from checkpointing.exported import decoding_args, is_exported, load_exported_weights, read_export
from checkpointing.run_folders import RUN_DIR_ENV, newest_checkpoint, run_reranker, versions
from datamodules import PixelFormatError, PokemonDataModule
from files.atomic_write import WriteError, atomic_write_bytes
from lightning_modules import PixelLM, PokemonClassifier  # noqa: F401 (short class names in configs)
from checkpointing.checkpoint_check import CheckpointMismatchError, check_checkpoint
from lightning_modules.pixel_lm import NonFiniteLossError

CONFIGS = Path(__file__).resolve().parent / "configs"  # where a bare --config name is looked up
RUNS = Path("runs")  # where the shipped configs put their runs, and where a bare predict.py looks


def find_config(name: str) -> str:
    """``name`` if it is a file, else ``configs/<name>`` (``--config llama.yaml``, ``--config llama``)."""
    if Path(name).is_file():
        return name
    for candidate in (CONFIGS / name, CONFIGS / f"{name}.yaml"):
        if candidate.is_file():
            return str(candidate)
    return name  # jsonargparse then says the file does not exist


def option_value(args: list[str], option: str) -> str | None:
    """The value given for ``--option`` (``--option X`` or ``--option=X``), the last one if repeated."""
    value = None
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value


def with_config_names(args: list[str]) -> list[str]:
    """``args`` with each ``--config NAME`` that is no file replaced by the shipped ``configs/NAME``."""
    out = list(args)
    for index, arg in enumerate(out):
        if arg == "--config" and index + 1 < len(out):
            out[index + 1] = find_config(out[index + 1])
        elif arg.startswith("--config="):
            out[index] = "--config=" + find_config(arg.split("=", 1)[1])
    return out


def is_model_run(run: Path) -> bool:
    """Whether ``run`` holds a trained PixelLM (not a classifier) and the config it was trained with."""
    import yaml

    try:
        config = yaml.safe_load((run / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    model = config.get("model") if isinstance(config, dict) else None
    return isinstance(model, dict) and str(model.get("class_path", "")).endswith("PixelLM")


def newest_model_run(root: Path = RUNS) -> Path | None:
    """The run folder under ``root`` whose ``checkpoints/best.ckpt`` was written last, among PixelLM runs."""
    found = [ckpt for ckpt in root.glob("**/version_*/checkpoints/best.ckpt") if is_model_run(ckpt.parent.parent)]
    return max(found, key=lambda ckpt: ckpt.stat().st_mtime).parent.parent if found else None


def with_run_config(args: list[str], program: str) -> list[str]:
    """Prediction without ``--config``: the config saved in the run whose checkpoint is used.

    ``--ckpt_path runs/x/version_0/checkpoints/best.ckpt`` alone takes that run's ``config.yaml``;
    ``--ckpt_path FOLDER`` (``export.py``'s) builds the folder's architecture, with its decoding as
    defaults, and takes no YAML from it: a ``class_path`` in a YAML can name any function.
    Nothing at all takes the newest trained run under ``runs/`` and its best checkpoint.
    """
    if option_value(args, "--config") is not None or any(arg in ("-h", "--help", "--print_config") for arg in args):
        return args
    ckpt_path = option_value(args, "--ckpt_path")
    if is_exported(ckpt_path):
        folder = ["--model=checkpointing.exported.ExportedPixelLM", f"--model.init_args.folder={ckpt_path}"]
        return [*folder, *decoding_args(read_export(ckpt_path)), *args]
    if ckpt_path not in (None, "best", "last"):
        run = Path(ckpt_path).parent.parent
        if Path(ckpt_path).parent.name != "checkpoints" or not (run / "config.yaml").is_file():
            raise FileNotFoundError(f"--ckpt_path {ckpt_path}: no config.yaml in its run folder; pass --config")
        return ["--config", str(run / "config.yaml"), *args]
    root = Path(option_value(args, "--trainer.default_root_dir") or RUNS)
    run = newest_model_run(root)
    if run is None:
        raise FileNotFoundError(
            f"no --config given and no trained run under {root}/: train one first "
            "(python train.py --config configs/llama.yaml) or pass --config"
        )
    checkpoint = run / "checkpoints" / f"{ckpt_path or 'best'}.ckpt"
    print(f"{program}: no --config given: using the newest run, {run} (its config.yaml and {checkpoint.name})")
    return ["--config", str(run / "config.yaml"), *args, "--ckpt_path", str(checkpoint)]


def claim_next_version(root: Path) -> Path:
    """Creates the next free ``version_<N>`` under ``root`` and returns it.

    The folder is claimed by ``mkdir``, which only one process can win: two runs started at the same
    moment get two folders instead of writing into one. A claimed folder that is still empty when
    this process ends (the run failed before writing anything) is removed again.
    """
    root.mkdir(parents=True, exist_ok=True)
    runs = versions(root)
    number = int(runs[-1].name.split("_")[1]) + 1 if runs else 0
    while True:
        run_dir = root / f"version_{number}"
        try:
            run_dir.mkdir()
        except FileExistsError:
            number += 1
            continue
        atexit.register(_remove_if_empty, run_dir)
        return run_dir


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only ever removes an empty folder
    except OSError:
        pass


def check_resume(model: LightningModule, ckpt_path: str) -> None:
    """Refuses, before training starts, a checkpoint that cannot continue into ``model``.

    Lightning checks the checkpoint only after the run has begun writing (``config.yaml``, W&B's
    files), so a refused resume would lose the run's own record; this way its folder stays as it was.
    """
    checkpoint = load_checkpoint(ckpt_path)  # weights-only: a file holding code is refused in one line
    check_checkpoint(checkpoint, model, model.hparams, ckpt_path)
    saved = (checkpoint.get("hyper_parameters") or {}).get("optimizer", "adamw")
    wanted = model.hparams.get("optimizer", "adamw")
    if saved != wanted:  # the optimizer state would not fit: Lightning would fail mid-restore
        raise CheckpointMismatchError(
            f"{ckpt_path}: trained with model.optimizer={saved}, the config asks for {wanted}; "
            f"resume with --model.init_args.optimizer={saved}"
        )


class RunConfig(SaveConfigCallback):
    """Lightning's ``SaveConfigCallback``, writing ``config.yaml`` once training starts, and atomically.

    The stock callback writes in ``setup``, before the checkpoint is restored: a resume that
    Lightning then refuses would already have replaced the run's config, and a full disk would
    leave half a file. Prediction writes no config at all.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        pass  # see on_train_start

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir  # asked on every rank: it broadcasts rank zero's answer
        if trainer.is_global_zero and log_dir is not None:
            text = self.parser.dump(self.config, skip_unset=False)
            atomic_write_bytes(Path(log_dir) / self.config_filename, text.encode())


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the W&B run logged into ``run_dir``, read from W&B's ``latest-run`` link."""
    latest = run_dir / "wandb" / "latest-run"
    return os.readlink(latest).rsplit("-", 1)[-1] if latest.is_symlink() else None


def class_configs(value) -> list[Namespace]:
    """The ``class_path``/``init_args`` entries of a logger or callbacks setting."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, Namespace) and "class_path" in item]


def keep_freed_memory() -> None:
    """Lets glibc keep freed memory for reuse instead of handing large blocks back to the kernel.

    By default glibc serves blocks above a moving threshold with ``mmap`` and unmaps them when they
    are freed, so a CPU training step page-faults its activations back in, zeroed, every time (about
    6,000 faults a step for the course's model). With mmap only above 32 MiB and no trimming, freed
    blocks are reused: 3-6 % faster CPU training here at the same peak memory (what PyTorch's tuning guide
    gets from jemalloc or tcmalloc). Skipped off glibc, and when ``MALLOC_*`` variables tune it already.
    """
    if any(name.startswith("MALLOC_") for name in os.environ):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not Linux with glibc (musl, macOS, Windows)
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # malloc.h
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest; also stops the threshold from moving
    mallopt(m_trim_threshold, 1 << 30)
    mallopt(m_top_pad, 64 << 20)


class PixelCLI(LightningCLI):
    """LightningCLI for the pixel models, with ``--ckpt_path`` and one folder per run.

    Args:
        stage: ``fit`` creates or resumes a run folder; ``predict`` reads the newest one.
        args: The command line (default: ``sys.argv[1:]``). ``--config NAME`` also finds
            ``configs/NAME``; prediction without ``--config`` takes the config of the run it predicts with.
    """

    def __init__(self, stage: str = "fit", args: list[str] | None = None, **kwargs) -> None:
        self.stage = stage
        keep_freed_memory()
        kwargs["args"] = args
        kwargs.setdefault("save_config_callback", RunConfig)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})  # a resumed run rewrites its config
        if stage != "fit":  # prediction has no run folder to save a config in (it wrote <root>/config.yaml)
            kwargs.setdefault("save_config_callback", None)
        # A config error raises instead of printing the 100-line usage; reported_errors shortens it.
        kwargs.setdefault("parser_kwargs", {"exit_on_error": False})
        # Any LightningModule (PixelLM, PokemonClassifier) whose __init__ takes the linked data keys.
        super().__init__(LightningModule, PokemonDataModule, subclass_mode_model=True, run=False, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        args = with_config_names(sys.argv[1:] if args is None else list(args))
        if self.stage == "predict":
            args = with_run_config(args, Path(sys.argv[0]).name)
        self.config = parser.parse_args(args)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for key in ("vocab_size", "seq_len", "prefix_len"):
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")
        default, kinds = ("last", "resume from") if self.stage == "fit" else ("best", "predict with")
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None if self.stage == "fit" else default,
            help=f"Checkpoint to {kinds}: a path, or 'last'/'best' for that checkpoint of the newest run "
            f"under trainer.default_root_dir{'' if self.stage == 'fit' else ', or a folder written by export.py'}.",
        )
        if self.stage == "predict":
            self._add_predict_arguments(parser)

    @staticmethod
    def _add_predict_arguments(parser: LightningArgumentParser) -> None:
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

    def before_instantiate_classes(self) -> None:
        config = self.config
        root = Path(config.trainer.default_root_dir or "runs")
        if self.stage == "fit":
            run_dir, config.ckpt_path = self._fit_run(root, config.ckpt_path)
            if config.ckpt_path is not None:  # weights-only and of the right kind, before Lightning reads it
                load_checkpoint(config.ckpt_path, model_kind(config))
            config.trainer.default_root_dir = str(run_dir)
            self._place_run_files(config, run_dir)
        else:
            config.ckpt_path = str(self._predict_checkpoint(root, config.ckpt_path))
            if not is_exported(config.ckpt_path):
                load_checkpoint(config.ckpt_path, model_kind(config))
            config.trainer.logger = False  # predicting is not a training run
            if config.split is not None:
                config.data.predict_split = config.split
            split = config.split = config.data.predict_split
            default = {"test": "submission.txt", "new": "new_pokemon.txt"}.get(split, f"{split}_completions.txt")
            config.output = config.output or default
            if config.reranker and Path(config.reranker).is_dir():
                config.reranker = str(self._reranker_checkpoint(Path(config.reranker)))
            elif config.reranker is None:
                config.reranker = self._default_reranker(config)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as error:  # a class rejected its config value; jsonargparse wraps that in union noise
            while error.__cause__ is not None:
                error = error.__cause__
            raise ConfigError(str(error)) from None
        if self.stage == "predict" and is_exported(self.config.ckpt_path):
            load_exported_weights(self.model, Path(self.config.ckpt_path), self.datamodule.palette)
        elif self.stage == "predict":  # before Lightning's load_state_dict, whose error lists dozens of tensor names
            check_checkpoint(load_checkpoint(self.config.ckpt_path), self.model, self.model.hparams, self.config.ckpt_path)
        if self.stage == "predict" and self.config.reranker:
            from evaluation.scoring import classifier_scorer  # only prediction needs the judge

            self.model.reranker = classifier_scorer(self.config.reranker)
        if self.stage == "fit" and self.config.ckpt_path:
            check_resume(self.model, self.config.ckpt_path)

    def instantiate_trainer(self, **kwargs) -> Trainer:
        """The trainer, saving checkpoints with :class:`AtomicCheckpointIO` unless the config names a CheckpointIO."""
        plugins = kwargs.pop("plugins", None) or self._get(self.config_init, "trainer", default={}).get("plugins")
        plugins = list(plugins) if isinstance(plugins, list) else [] if plugins is None else [plugins]
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(AtomicCheckpointIO())
        return super().instantiate_trainer(plugins=plugins, **kwargs)

    @property
    def checkpoint_file(self) -> str | None:
        """``--ckpt_path`` for Lightning to load; None for an exported folder, whose weights are loaded already."""
        return None if is_exported(self.config.ckpt_path) else self.config.ckpt_path

    @staticmethod
    def _fit_run(root: Path, ckpt_path: str | None) -> tuple[Path, str | None]:
        """The run folder to write to and the checkpoint to resume from."""
        if RUN_DIR_ENV in os.environ:  # a DDP worker: the launching process has chosen already
            run_dir = Path(os.environ[RUN_DIR_ENV])
            last = run_dir / "checkpoints" / "last.ckpt"
            return run_dir, (str(last) if ckpt_path == "last" and last.is_file() else ckpt_path)
        if ckpt_path == "last":
            found = newest_checkpoint(root, "last")
            if found is None:
                print(f"No last.ckpt under {root}: starting a new run.")
            run_dir, ckpt_path = (found.parent.parent, str(found)) if found else (claim_next_version(root), None)
        elif ckpt_path is not None and Path(ckpt_path).parent.name == "checkpoints":
            run_dir = Path(ckpt_path).parent.parent  # resuming a run continues in its folder
        else:
            run_dir = claim_next_version(root)
        os.environ[RUN_DIR_ENV] = str(run_dir)
        return run_dir, ckpt_path

    @staticmethod
    def _place_run_files(config: Namespace, run_dir: Path) -> None:
        """Points checkpoints and W&B at the run folder, and W&B at its earlier run when resuming."""
        for callback in class_configs(config.trainer.callbacks or []):
            if callback.class_path.endswith("Checkpoint") and not callback.init_args.get("dirpath"):
                callback.init_args.dirpath = str(run_dir / "checkpoints")
        for logger in class_configs(config.trainer.logger):
            if logger.class_path.endswith("WandbLogger"):
                args = logger.init_args
                args.save_dir = str(run_dir)
                if args.get("id") is None and (previous := wandb_run_id(run_dir)):
                    args.id, args.resume = previous, "allow"
                if "WANDB_MODE" not in os.environ and not args.get("offline") and not _wandb_logged_in():
                    args.offline = True
                    print(f"W&B: not logged in, logging offline to {run_dir / 'wandb'} (upload later: wandb sync)")

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
    def _default_reranker(config: Namespace) -> str | None:
        """Best-of-N without ``--reranker``: the classifier trained with the model (``callbacks.TrainReranker``)."""
        decoding = config.model.init_args.get("decoding") or {}
        best_of, contrast = (decoding.get(key, default) for key, default in (("best_of", 1), ("contrast", 0.0)))
        if best_of <= 1:
            return None
        found = run_reranker(Path(config.ckpt_path))
        if found is None:
            print(f"best_of={best_of} and no reranker in this run: keeping the sample the model itself scores best "
                  f"(decoding.contrast={contrast}); --reranker CLASSIFIER keeps the one a classifier does")  # fmt: skip
            return None
        print(f"Reranking with {found} (trained with the model)")
        return str(found)

    @staticmethod
    def _predict_checkpoint(root: Path, ckpt_path: str) -> Path:
        if ckpt_path in ("best", "last"):
            found = newest_checkpoint(root, ckpt_path)
            if found is None:
                raise FileNotFoundError(f"no {ckpt_path}.ckpt in any run under {root}: train first, or pass --ckpt_path")
            return found
        if not Path(ckpt_path).is_file() and not is_exported(ckpt_path):
            raise FileNotFoundError(f"--ckpt_path: {ckpt_path} does not exist")
        return Path(ckpt_path)


def _wandb_logged_in() -> bool:
    """Whether W&B finds an API key (environment or netrc), asking no one and leaving W&B's settings unset."""
    import wandb

    try:
        return wandb.login(prompt=False, verify=False)
    finally:
        # login() freezes W&B's settings; without this the offline mode the logger asks for later is
        # ignored and wandb.init() fails with "No API key configured".
        wandb.teardown()



def model_kind(config: Namespace) -> str:
    """``PokemonClassifier`` or ``PixelLM``: the kind of checkpoint the config's model loads."""
    return "PokemonClassifier" if str(config.model.class_path).endswith("PokemonClassifier") else "PixelLM"


class ConfigError(ValueError):
    """A config value that a class rejected when it was built; the message names the key."""


USER_ERRORS = (
    PixelFormatError,
    RerankerError,
    TimeBudgetError,
    FileNotFoundError,
    ConfigError,
    CheckpointError,
    CheckpointMismatchError,
    CheckpointReadError,
    NonFiniteLossError,
    WriteError,
)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Reports the user's errors as one line on stderr, ``error: <message>``, and exits with status 2.

    Bad data, a bad config value, a missing file, a checkpoint that does not fit, a diverged run: a
    traceback would only bury the one line that says what to fix. Any other exception is a bug and
    keeps its traceback. A run stopped by SIGTERM exits with 143, as killed programs do (Lightning's
    own exit status would be 0, as if the run had finished).
    """
    try:
        yield
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except ArgumentError as error:  # a misspelt key or a value of the wrong type
        print(f"error: {short_argument_error(str(error))} (--help lists the options)", file=sys.stderr)
        raise SystemExit(2) from None
    except SIGTERMException:
        print("error: stopped by SIGTERM", file=sys.stderr)
        raise SystemExit(128 + signal.SIGTERM) from None
    except KeyboardInterrupt:  # Ctrl-C outside training (inside, Lightning exits with status 1)
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(128 + signal.SIGINT) from None


class Stopped(SystemExit):
    """SIGTERM or Ctrl-C under :func:`stopped_by_signals`; a SystemExit, so no ``except Exception`` keeps it."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGTERM and Ctrl-C stop prediction at once: one line on stderr, status 143 or 130, no file replaced.

    Lightning only notes a SIGTERM while predicting (its loops act on it in training and validation)
    and turns Ctrl-C there into status 1; outside the trainer (``evaluate.py``) SIGTERM would kill
    the process without a word. Outputs are written at the end, atomically, so stopping before then
    leaves the earlier files exactly as they were.
    """

    def stop(signum: int, frame) -> None:
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except Stopped as stopped:
        print("error: stopped by SIGTERM" if stopped.signum == signal.SIGTERM else "error: interrupted", file=sys.stderr)
        raise SystemExit(stopped.code) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# jsonargparse's lines around the reason when a class rejects a key: true, but noise to a user.
_NOISE = ("Does not validate against", "Subtypes:", "Errors:", "- Expected a <class 'NoneType'>", "Given value")


def short_argument_error(message: str) -> str:
    """jsonargparse's error on one line: the key and the reason, without its union bookkeeping."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    kept = [line.removeprefix("- ") for line in lines if not line.startswith(_NOISE)]
    return " ".join(kept).replace("Parser key ", "key ").replace(": Problem with given class_path", ": class_path")

"""A trained PixelLM as a folder that cannot carry code, and that is a faithful Hugging Face model.

``export.py`` writes it: Hugging Face's ``save_pretrained`` of the inner causal LM (``config.json``,
``model.safetensors``), ``generation_config.json`` with the model's own decoding (sampling settings,
160 new pixels), a model card (``README.md``), and ``pixel_lm.json`` with what this project needs
besides (architecture, sizes, palette, decoding, training record). ``predict.py`` and ``evaluate.py``
take the folder as ``--ckpt_path``. Reading it runs ``json.loads`` and safetensors' loader, nothing
else; the architecture is built from ``pixel_lm.json`` in Python, never handed to the config parser,
which would build any ``class_path`` it met inside a value.

A folder is input from anyone, so nothing in it is taken on trust (issue 35): its files are opened only
if they are regular files (a FIFO made the reader wait forever, deaf to SIGTERM and Ctrl-C) and read
within bounds; every size ``pixel_lm.json`` sets is checked against the weights file's own header before
the model is built from it (:func:`check_weights_header`: a tampered width asked ~100 GB), and that
header against the file's bytes; the weights must be of a floating-point type and finite; the decoding
goes through :class:`Decoding`'s checks. ``export.py --overwrite`` replaces only a folder that is an
export (:func:`check_destination`), never a run, a parent of the checkpoint or the current folder.

Faithful to plain ``transformers``: ``AutoModelForCausalLM.from_pretrained(folder)``,
``torch.manual_seed(seed)`` and ``model.generate(prefixes)`` give the tokens ``predict.py --ckpt_path
folder`` writes with that seed and ``best_of`` 1 (one batch; predict.py seeds each batch by
``seed`` plus the index of its first image). Both run ``generate`` on the same weights with the same
warpers: the folder's temperature, top-k and top-p, in ``generate``'s order, are the ones
``Decoding.generate_kwargs`` applies in one pass. Best-of-N, its reranker, contrast and consensus are
this project's own and stay in ``pixel_lm.json``.

Row and column embeddings (``grid_positions``) have no place in a ``transformers`` architecture, and
a model loaded without them draws worse without a word (issue 34: greedy dev accuracy 0.319 instead
of 0.364, with ``UNEXPECTED`` in a load report nobody reads). So a grid-position model is either
turned into a native one or made impossible to load by ``transformers``, never handed code to run
(no ``trust_remote_code``):

- A model with a learned position table (GPT-2's ``wpe``, :data:`POSITION_TABLES`): the grid
  embedding of position p, ``row[p // width] + column[p % width]``, is added into ``wpe[p]``, which
  GPT-2 adds to every token's embedding at position p, so the folder is a plain GPT-2 and the same
  function. Only the rounding moves: the project adds ``(token + grid) + wpe``, the folded model
  ``token + (wpe + grid)``, which can differ in the last bit of an embedding. ``pixel_lm.json`` names
  the table (``grid_positions_in``), and this project loads such a folder with zero row and column
  tables, which computes exactly what the plain GPT-2 computes: the folder, not the checkpoint it
  came from, is the model ``predict.py`` and ``transformers`` both run.
- Rotary models (Llama, Mistral, Qwen, ...: no position table to add into): ``config.json``'s
  ``model_type`` becomes ``pixel_lm_grid_<type>``, a type ``transformers`` does not know, so
  ``AutoConfig`` / ``AutoModelForCausalLM.from_pretrained`` refuse the folder ("does not recognize
  this architecture") instead of loading it without its positions; the model card says why and how to
  load it here. This project never reads ``config.json`` (it builds from ``pixel_lm.json``), so it
  loads the folder as before. Naming the class outright (``LlamaForCausalLM.from_pretrained``) skips
  the type check; transformers then warns that the config is of another type and lists the grid
  tables as unexpected.
"""

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

import torch

from checkpointing.checkpoint_check import CheckpointMismatchError, check_checkpoint, describe
from checkpointing.loading import CheckpointError
from datamodules.pixel_files import MAX_NUMBERS, PixelFormatError
from datamodules.pixel_files import _opened as _opened_data_file
from generation.decoding import Decoding, DecodingError
from lightning_modules.architecture import build_causal_lm, build_config
from lightning_modules.causal_chunks import CHUNKS_KEY
from lightning_modules.pixel_lm import PixelLM

SETTINGS_FILE = "pixel_lm.json"
WEIGHTS_FILE = "model.safetensors"  # what save_pretrained writes for a model of one shard
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
FORMAT = "pokemon-pixel-lm"
VERSION = 2  # 2: grid positions folded or refused, generation_config.json, model card
READABLE_VERSIONS = (1, 2)
# Model types whose positions are a learned table with a row per position, and that table's key in the
# causal LM's state_dict: row and column embeddings add into it and leave a plain model of the type.
POSITION_TABLES = {"gpt2": "transformer.wpe.weight"}
REFUSED_MODEL_TYPE = "pixel_lm_grid_{}"  # config.json's model_type for grid models transformers cannot run
EXPORTED_FILES = {SETTINGS_FILE, WEIGHTS_FILE, CONFIG_FILE, CARD_FILE, "generation_config.json"}

# Bounds on what a shared folder may ask for before its weights are read (a folder is input from anyone):
# pixel_lm.json holds a few kB (167 colours, sizes, decoding, training record).
MAX_SETTINGS_BYTES = 1 << 20
# safetensors' header is JSON of about 100 bytes a tensor; a 256-layer Llama has about 2,300 tensors.
MAX_HEADER_BYTES = 16 << 20
# Layers the model may have: building one takes time even without memory (1,000 take about 10 s on the
# meta device), and no model of 20 x 20 images needs more (GPT-2 XL has 48).
MAX_LAYERS = 256
# Seeds torch takes are 64-bit; a batch's seed is the folder's plus the index of its first image.
MAX_SEED = 2**62
# safetensors' dtype names (its format's own), as torch reads them.
SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass(frozen=True)
class ExportedModel:
    """The settings of an exported folder, checked: what is needed to rebuild the model and check the data."""

    folder: Path
    model_type: str
    model_config: dict[str, Any]
    vocab_size: int
    seq_len: int
    prefix_len: int
    palette: torch.Tensor  # (vocab_size, 3) uint8
    decoding: Decoding
    grid_positions: bool = False  # row and column embeddings (folders written before them have none)
    image_width: int = 20
    grid_positions_in: str | None = None  # the position table they were added into, when they were
    training: dict[str, Any] | None = None  # what export.py knew of the training run (model card)

    @property
    def hparams(self) -> dict[str, Any]:
        keys = ("model_type", "model_config", "vocab_size", "seq_len", "prefix_len")
        return {key: getattr(self, key) for key in keys}

    @property
    def layout(self) -> dict[str, Any]:
        """The PixelLM settings that add weights beside the causal LM's: they must match the config's."""
        return {"grid_positions": self.grid_positions, "image_width": self.image_width}


def is_exported(path: str | Path | None) -> bool:
    """Whether ``--ckpt_path`` names a folder (an export) rather than a checkpoint file."""
    return path is not None and Path(path).is_dir()


def export_pixel_lm(
    model: PixelLM,
    palette: torch.Tensor,
    out: str | Path,
    overwrite: bool = False,
    training: dict[str, Any] | None = None,
) -> Path:
    """Writes ``model`` (its weights as they are now) and ``palette`` to the folder ``out``, atomically.

    The folder is built beside ``out`` and renamed into place, so ``out`` is never half written, and
    a failure leaves nothing beside it. An existing non-empty ``out`` is replaced only with
    ``overwrite``, and only if it is an exported folder (:func:`check_destination`). ``training``: what
    is known of the run (:func:`training_record`), kept in ``pixel_lm.json`` and told in the model card.
    """
    from transformers.utils import logging

    given, out = Path(out), check_destination(out, overwrite)
    building = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        logging.disable_progress_bar()  # "Writing model shards" for a file of a few MB
        hp = model.hparams
        weights, grid_positions_in = hugging_face_weights(model)
        parameters = sum(
            tensor.numel() for tensor in {tensor.data_ptr(): tensor for tensor in weights.values()}.values()
        )
        model.model.save_pretrained(building, state_dict=weights)  # safetensors, never pickle; empties weights
        refused = bool(hp.get("grid_positions")) and grid_positions_in is None
        _write_hugging_face_config(building / CONFIG_FILE, refused)
        generation_config(model.decoding, hp["seq_len"] - hp["prefix_len"]).save_pretrained(building)
        settings = {
            "format": FORMAT,
            "version": VERSION,
            "model_type": hp["model_type"],
            "model_config": dict(hp.get("model_config") or {}),
            "vocab_size": hp["vocab_size"],
            "seq_len": hp["seq_len"],
            "prefix_len": hp["prefix_len"],
            "decoding": asdict(model.decoding),
            "grid_positions": bool(hp.get("grid_positions", False)),
            "image_width": hp.get("image_width", 20),
            **({"grid_positions_in": grid_positions_in} if grid_positions_in else {}),
            **({"training": training} if training else {}),
        }
        (building / SETTINGS_FILE).write_text(_settings_text(settings, palette))
        model_card(settings, parameters, refused).save(building / CARD_FILE)
        os.chmod(building, 0o777 & ~_umask())  # mkdtemp makes 0700; the folder should look like any other
        for file in building.iterdir():
            os.chmod(file, 0o666 & ~_umask())  # and safetensors writes 0600
        _move_into_place(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return given


def check_destination(out: str | Path, overwrite: bool) -> Path:
    """``out`` as an absolute path, if :func:`export_pixel_lm` may write it; else a one-line :class:`CheckpointError`.

    ``--overwrite`` deletes what is there, so it replaces only a folder ``export.py`` wrote: one holding
    ``pixel_lm.json`` of this format and no file an export does not hold. A run folder (its checkpoints,
    the very run being exported), a parent of the checkpoint or a project folder is refused, as is the
    current folder or one above it (renaming it away would leave the process in a deleted folder;
    ``--out .`` used to fail half-way and leave an empty ``..<name>.old/`` behind).
    """
    path = Path(os.path.abspath(out))  # "." and ".." have no name to build a folder beside
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--out {out}: the folder {path.parent} does not exist")
    here, real = Path(os.getcwd()), Path(os.path.realpath(path))  # getcwd: the folder itself, links resolved
    if real == here or real in here.parents:
        what = "the current folder" if path == here else f"a folder above the current folder ({here})"
        raise CheckpointError(f"--out {out}: is {what}; export into a new folder, e.g. --out {path / 'exported'}")
    if not os.path.lexists(path) or (path.is_dir() and not any(path.iterdir())):
        return path
    if not overwrite:
        raise CheckpointError(f"--out {out}: exists and is not empty; pass --overwrite to replace it")
    if not path.is_dir():
        raise CheckpointError(f"--out {out}: is a file, not a folder export.py wrote; --overwrite replaces only those")
    foreign = sorted(entry.name for entry in path.iterdir() if entry.name not in EXPORTED_FILES or entry.is_dir())
    if foreign or not _is_export_settings(path / SETTINGS_FILE):
        holds = f"it holds {foreign[0]}, which an export does not" if foreign else f"it has no {FORMAT} {SETTINGS_FILE}"
        raise CheckpointError(
            f"--out {out}: is not a folder export.py wrote ({holds}); --overwrite replaces only those: "
            "choose another --out, or remove the folder yourself"
        )
    return path


def _is_export_settings(path: Path) -> bool:
    """Whether ``path`` is an exported folder's ``pixel_lm.json`` (of any version)."""
    try:
        return _settings_json(path).get("format") == FORMAT
    except (CheckpointError, FileNotFoundError):
        return False


def hugging_face_weights(model: PixelLM) -> tuple[dict[str, torch.Tensor], str | None]:
    """The causal LM's ``state_dict`` as the folder stores it, and the key of the position table its
    row and column embeddings were added into (None: no grid positions, or a model without such a table,
    whose grid tables are kept as they are)."""
    weights = dict(model.model.state_dict())  # a copy: save_pretrained pops the keys of the dict it is given
    table = POSITION_TABLES.get(model.hparams.model_type)
    if not model.hparams.get("grid_positions") or table is None:
        return weights, None
    grid = model.model.base_model.grid_positions
    prefix = next(name for name, module in model.model.named_modules() if module is grid)
    for key in grid.state_dict():
        del weights[f"{prefix}.{key}"]
    with torch.no_grad():
        positions = torch.arange(len(weights[table]), device=weights[table].device)
        weights[table] = weights[table] + grid(positions)  # wpe[p] + row[p // width] + column[p % width]
    return weights, table


def _write_hugging_face_config(path: Path, refused: bool) -> None:
    """Rewrites save_pretrained's ``config.json``: without this project's training-only attention setting,
    and for a grid model transformers cannot run, with a model type it does not know (module docstring)."""
    config = json.loads(path.read_text())
    config.pop(CHUNKS_KEY, None)  # causal_chunks: a CPU training speed-up; transformers' own attention is the same
    if refused:
        config["model_type"] = REFUSED_MODEL_TYPE.format(config["model_type"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")  # as save_pretrained writes it


def generation_config(decoding: Decoding, new_tokens: int):
    """``decoding`` as a ``transformers.GenerationConfig``: what plain ``generate`` needs to draw as predict.py.

    Temperature, top-k and top-p are written even when they filter nothing (1.0, 0, 1.0): ``generate``
    fills a value left out with its own default, and its default top-k is 50.
    """
    from transformers import GenerationConfig

    sampling = {"temperature": decoding.temperature, "top_k": decoding.top_k, "top_p": decoding.top_p}
    return GenerationConfig(
        do_sample=decoding.do_sample,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        **(sampling if decoding.do_sample else {}),  # greedy: transformers warns about sampling settings
    )


def training_record(checkpoint: dict[str, Any], path: str | Path, config: list[str] | None = None) -> dict[str, Any]:
    """What a Lightning checkpoint tells of its run, for the model card: the config file(s), the epoch
    and step it was saved at, the monitored metric's best value, and the optimizer settings."""
    hp = checkpoint.get("hyper_parameters") or {}
    record: dict[str, Any] = {"checkpoint": Path(path).name}
    if config:
        record["config"] = [str(file) for file in config]
    for key in ("epoch", "global_step"):
        if isinstance(checkpoint.get(key), int):
            record[key] = checkpoint[key]
    for key in ("optimizer", "lr", "weight_decay", "schedule", "warmup_steps", "input_noise"):
        if isinstance(hp.get(key), (str, int, float)):
            record[key] = hp[key]
    callbacks = checkpoint.get("callbacks") or {}
    averaging = next((str(name) for name in callbacks if "WeightAveraging" in str(name)), None)
    if averaging:  # the weights are the average that callback kept, not the last step's
        record["weight_averaging"] = averaging
    for name, state in callbacks.items():
        if str(name).startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor"):
            score = state.get("best_model_score")
            if score is not None:
                record["monitor"] = state["monitor"]
                record["best"] = round(float(score), 6)
                record["best_checkpoint"] = Path(str(state.get("best_model_path", ""))).name
                break
    return record


def model_card(settings: dict[str, Any], parameters: int, refused: bool):
    """The folder's ``README.md`` as a ``huggingface_hub.ModelCard``: what the model is, its palette, how
    it was trained and scored, and how to load and run it with plain ``transformers`` (or why not)."""
    from huggingface_hub import ModelCard, ModelCardData

    model_type, width, seq_len = settings["model_type"], settings["image_width"], settings["seq_len"]
    prefix_len, vocab_size = settings["prefix_len"], settings["vocab_size"]
    decoding, training = Decoding(**settings["decoding"]), settings.get("training") or {}
    sizes = ", ".join(f"`{key}` {value}" for key, value in settings["model_config"].items()) or "its defaults"
    tags = ["pixel-art", "pokemon", "image-completion", "trained-from-scratch", FORMAT]
    data = ModelCardData(library_name=None if refused else "transformers", tags=tags)
    if settings.get("grid_positions_in"):
        grid = (
            f"Each pixel's row and column embeddings (row = p // {width}, column = p % {width}) were trained beside "
            f"the position table and are added into it (`{settings['grid_positions_in']}`), so the folder is a plain "
            f"`{model_type}` that computes the same function (up to float rounding in the last bit)."
        )
    elif settings["grid_positions"]:
        grid = (
            f"Each pixel also gets learned row and column embeddings (`grid_positions`, {width} pixels a row), added "
            f"to its colour's embedding. `transformers`' `{model_type}` has no place for them, so this folder is "
            "made so that plain `transformers` refuses it (see Loading) rather than running the model without them."
        )
    else:
        grid = "Positions are the architecture's own."
    if decoding.do_sample:
        draws = (
            f"samples with temperature {decoding.temperature}, top-k {decoding.top_k or 'off'} and top-p "
            f"{decoding.top_p if decoding.top_p < 1 else 'off'} (applied in that order)"
        )
    else:
        draws = "decodes greedily (the likeliest colour at each pixel)"
    lines = [
        f"# Pokémon pixel model: {model_type}, {parameters:,} parameters",
        "",
        f"A decoder-only transformer trained from scratch to draw {seq_len // width} x {width} pixel-art Pokémon pixel "
        f"by pixel. A token is one of {vocab_size} palette colours and an image is {seq_len} tokens, row by row from "
        f"the top left; given the top {prefix_len} pixels ({prefix_len // width} rows), it completes the other "
        f"{seq_len - prefix_len}. No tokenizer: the token ids are the palette indices.",
        "",
        "## Architecture",
        "",
        f"`transformers`' `{model_type}` built from its config ({sizes}), vocabulary {vocab_size}, context {seq_len} "
        f"tokens: {parameters:,} parameters. {grid}",
        "",
        "## Palette",
        "",
        f"Token i is the colour `palette[i]` in `{SETTINGS_FILE}` of this folder: {vocab_size} `[R, G, B]` colours "
        "of 0-255, the `colormap.txt` of the data it was trained on.",
        "",
        "## Training",
        "",
        *_training_lines(training),
        "",
    ]
    lines += _refusal_lines(model_type) if refused else _usage_lines(seq_len, prefix_len, width, decoding.seed)
    lines += [
        "",
        "## Decoding",
        "",
        f"`generation_config.json` holds the decoding the model was configured with: it {draws}, "
        f"{seq_len - prefix_len} new pixels. `{SETTINGS_FILE}` holds the same settings as this project reads them "
        f"(`decoding`), with seed {decoding.seed}: `predict.py` seeds each batch of prefixes with that seed plus the "
        "index of the batch's first image, so one batch seeded with it draws what `predict.py` draws.",
        "",
        "## What it does not do",
        "",
        f"- Best-of-N (`decoding.best_of` {decoding.best_of} in `{SETTINGS_FILE}`): drawing several completions per "
        "prefix and keeping the one a Pokémon classifier, a contrast score against a bigram, or a consensus among the "
        "samples prefers is this project's own (`predict.py`), not `transformers`': `generate` draws one completion "
        "per prefix.",
        "- It draws 20 x 20 Pokémon in this palette and nothing else; it takes no text and outputs no text.",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def _training_lines(training: dict[str, Any]) -> list[str]:
    if not training:
        return ["Not recorded (exported from a folder that carried no training record)."]
    lines = []
    if training.get("config"):
        lines.append(f"- Config: {', '.join(f'`{file}`' for file in training['config'])}")
    if "epoch" in training:
        lines.append(
            f"- Weights of `{training.get('checkpoint', 'the checkpoint')}`, saved in epoch {training['epoch'] + 1} "
            f"after {training.get('global_step', '?')} optimizer steps"
        )
    settings = ", ".join(
        f"{key} {training[key]}" for key in ("lr", "weight_decay", "schedule", "warmup_steps") if key in training
    )
    if "optimizer" in training:
        lines.append(f"- Optimizer: {training['optimizer']}" + (f" ({settings})" if settings else ""))
    if training.get("input_noise"):
        lines.append(f"- Input noise: {training['input_noise']} of the input pixels replaced by random colours")
    if training.get("weight_averaging"):
        lines.append(f"- Weights: the `{training['weight_averaging']}` average kept during training")
    if "best" in training:
        what = " (dev bits per generated pixel, lower is better)" if training["monitor"] == "val/bits_per_pixel" else ""
        which = training.get("best_checkpoint")
        lines.append(f"- Best `{training['monitor']}`: {training['best']:.4f}{what}, scored by `{which}`")
    return lines or ["Not recorded."]


def _usage_lines(seq_len: int, prefix_len: int, width: int, seed: int) -> list[str]:
    return [
        "## Use with transformers",
        "",
        "```python",
        "import json",
        "import torch",
        "from transformers import AutoModelForCausalLM",
        "",
        'folder = "path/to/this/folder"  # or its Hub id (then read pixel_lm.json with hf_hub_download)',
        "model = AutoModelForCausalLM.from_pretrained(folder)",
        f'palette = torch.tensor(json.load(open(f"{{folder}}/{SETTINGS_FILE}"))["palette"])  # (colours, 3) RGB',
        f"prefixes = ...  # (N, {prefix_len}) palette indices: the top {prefix_len // width} rows of N images",
        f"torch.manual_seed({seed})",
        f"images = model.generate(prefixes)  # (N, {seq_len}), decoded as generation_config.json says",
        f"rgb = palette[images].view(-1, {seq_len // width}, {width}, 3)",
        "```",
    ]


def _refusal_lines(model_type: str) -> list[str]:
    return [
        "## Loading",
        "",
        f"`config.json` names the model type `{REFUSED_MODEL_TYPE.format(model_type)}`, which `transformers` does not "
        'know, on purpose: `AutoModelForCausalLM.from_pretrained` refuses this folder ("does not recognize this '
        'architecture"; upgrading transformers does not help). The row and column embeddings '
        f"(`*.grid_positions.*` in `{WEIGHTS_FILE}`) have no place in `transformers`' `{model_type}`, whose positions "
        "are rotary, and the model loaded without them would draw worse without a word. Nothing in this folder is "
        "code: load it with the project that trained it (its `PixelLM` adds the embeddings in Python):",
        "",
        "```bash",
        "python predict.py --ckpt_path path/to/this/folder",
        "```",
    ]


def _settings_text(settings: dict[str, Any], palette: torch.Tensor) -> str:
    """``settings`` as indented JSON, with the palette last and one colour a line."""
    head = json.dumps(settings, indent=1)[: -len("\n}")]
    colours = ",\n".join(f"  {json.dumps(colour)}" for colour in palette.tolist())
    return f'{head},\n "palette": [\n{colours}\n ]\n}}\n'


def _move_into_place(building: Path, out: Path) -> None:
    """Renames ``building`` to ``out``; an ``out`` already there is moved aside first, put back if that fails,
    and deleted once the new folder is in place."""
    if not os.path.lexists(out):
        os.rename(building, out)
        return
    aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    try:
        os.rename(out, aside / out.name)
    except BaseException:
        aside.rmdir()
        raise
    try:
        os.rename(building, out)
    except BaseException:
        os.rename(aside / out.name, out)
        aside.rmdir()
        raise
    shutil.rmtree(aside)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading if it is a regular file; else a one-line :class:`CheckpointError`.

    A folder is input from anyone, and a FIFO in place of one of its files made the reader wait for a
    writer forever, deaf to SIGTERM and Ctrl-C (safetensors' loader blocks in ``open``): the data files'
    own check is used, which never blocks.
    """
    with ExitStack() as stack:
        try:
            file = stack.enter_context(_opened_data_file(path))
        except PixelFormatError as error:
            raise CheckpointError(str(error)) from None
        yield file


def _settings_json(path: Path) -> dict[str, Any]:
    """``pixel_lm.json`` parsed, within :data:`MAX_SETTINGS_BYTES`; a one-line error for anything but a JSON object."""
    if not os.path.lexists(path):
        raise CheckpointError(
            f"{path.parent}: is a folder without {SETTINGS_FILE}, not an exported model (export.py writes one)"
        )
    with _opened(path) as file:
        text = file.read(MAX_SETTINGS_BYTES + 1)
    if len(text) > MAX_SETTINGS_BYTES:
        raise CheckpointError(
            f"{path}: is larger than {MAX_SETTINGS_BYTES // 1024} kB; an exported model's settings take a few kB"
        )
    try:
        data = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # ValueError: also ints of 4,300+ digits
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error).splitlines()[0]
        raise CheckpointError(f"{path}: is not valid JSON ({reason})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: is not a {FORMAT} file (no JSON object)")
    return data


def read_export(folder: str | Path) -> ExportedModel:
    """The checked settings of an exported folder; a one-line :class:`CheckpointError` for anything amiss.

    Reads ``pixel_lm.json`` only; the sizes it sets are checked against ``model.safetensors`` before a model
    is built from them (:class:`ExportedPixelLM`), and the weights when they are loaded
    (:func:`load_exported_weights`).
    """
    folder = Path(folder)
    path = folder / SETTINGS_FILE
    data = _settings_json(path)
    if data.get("format") != FORMAT or data.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{path}: is not a {FORMAT} file of version {' or '.join(map(str, READABLE_VERSIONS))}")

    def field(key: str, kind: type | tuple[type, ...]):
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise CheckpointError(f"{path}: {key} is missing or not a {getattr(kind, '__name__', kind)}")
        return value

    vocab_size = field("vocab_size", int)
    palette = field("palette", list)
    if len(palette) != vocab_size or not all(_is_colour(colour) for colour in palette):
        raise CheckpointError(f"{path}: palette is not {vocab_size} [R, G, B] colours of 0..255")
    seq_len, prefix_len = field("seq_len", int), field("prefix_len", int)
    image_width = field("image_width", int) if "image_width" in data else 20
    if not 1 < seq_len <= MAX_NUMBERS:  # the data files' bound on a line: a 256 x 256 image
        raise CheckpointError(f"{path}: seq_len must be 2 to {MAX_NUMBERS}, got {_shown(seq_len)}")
    if not 1 <= prefix_len < seq_len:
        raise CheckpointError(
            f"{path}: prefix_len must be 1 to {seq_len - 1} (seq_len less one), got {_shown(prefix_len)}"
        )
    if not 1 <= image_width <= seq_len or seq_len % image_width:
        raise CheckpointError(
            f"{path}: image_width {_shown(image_width)} does not divide the {seq_len} pixels of an image"
        )
    return ExportedModel(
        folder=folder,
        model_type=field("model_type", str),
        model_config=field("model_config", dict),
        vocab_size=vocab_size,
        seq_len=seq_len,
        prefix_len=prefix_len,
        palette=torch.tensor(palette, dtype=torch.uint8),
        decoding=_decoding(field("decoding", dict), path),
        grid_positions=field("grid_positions", bool) if "grid_positions" in data else False,
        image_width=image_width,
        grid_positions_in=field("grid_positions_in", str) if "grid_positions_in" in data else None,
        training=field("training", dict) if "training" in data else None,
    )


def _shown(value: Any) -> str:
    """``value`` for a one-line message: a number of thousands of digits is shortened."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"


def _is_colour(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(type(c) is int and 0 <= c <= 255 for c in value)


def _decoding(values: dict[str, Any], path: Path) -> Decoding:
    """The folder's decoding, through :class:`Decoding`'s own checks (``best_of`` bounded among them), naming
    the file."""
    types = {f.name: f.type for f in fields(Decoding)}
    for key, value in values.items():
        kind = {bool: bool, float: (int, float), int: int}.get(types.get(key))
        if kind is None or not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise CheckpointError(f"{path}: decoding.{key} = {_shown(value)} is not a Decoding setting")
        if kind == (int, float) and isinstance(value, int) and value.bit_length() > 1023:  # float() would overflow
            raise CheckpointError(f"{path}: decoding.{key} = {_shown(value)} is too large for a number of its kind")
    if not -MAX_SEED <= values.get("seed", 0) <= MAX_SEED:  # torch.manual_seed takes 64 bits
        raise CheckpointError(f"{path}: decoding.seed: must be within ±2**62, got {_shown(values['seed'])}")
    try:
        return Decoding(**values)
    except DecodingError as error:
        raise CheckpointError(f"{path}: {error}") from None


def decoding_args(export: ExportedModel) -> list[str]:
    """The folder's decoding as command-line options, so that options given after them override one setting each."""
    return [f"--model.init_args.decoding.{key}={json.dumps(value)}" for key, value in asdict(export.decoding).items()]


def load_exported_weights(model: PixelLM, folder: str | Path, palette: torch.Tensor | None = None) -> None:
    """Loads the folder's safetensors into ``model`` after checking architecture, sizes and palette (one line each).

    The weights file's header is read and checked against ``model`` before its data: every tensor of the
    model's shape and of a floating-point type (a relabelled ``I32`` would be cast silently), and the file
    no larger than the header says. The weights read must be finite.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    folder = Path(folder)
    export = read_export(folder)
    hp = model.hparams
    if any(export.hparams[key] != (hp.get(key) or ({} if key == "model_config" else None)) for key in export.hparams):
        raise CheckpointMismatchError(
            f"{folder}: the exported model is {describe(export.hparams)}, the config asks for {describe(hp)}"
        )
    configured = {"grid_positions": bool(hp.get("grid_positions", False)), "image_width": hp.get("image_width", 20)}
    for key in ("grid_positions", "image_width") if export.grid_positions else ("grid_positions",):
        if configured[key] != export.layout[key]:
            raise CheckpointMismatchError(
                f"{folder}: the exported model has {key} {export.layout[key]}, the config {configured[key]}"
            )
    if palette is not None and export.palette.shape != palette.shape:
        raise CheckpointMismatchError(
            f"{folder}: its palette has {len(export.palette)} colours, the data's {len(palette)}"
        )
    if palette is not None and not torch.equal(export.palette, palette.to(torch.uint8)):
        index = int((export.palette != palette).any(dim=1).nonzero()[0])
        raise CheckpointMismatchError(
            f"{folder}: its palette differs from the data's at colour {index} "
            f"({export.palette[index].tolist()} there, {palette[index].tolist()} in the data's colormap)"
        )
    path = folder / WEIGHTS_FILE
    with _opened(path) as file:
        _check_fit(export, _weights_header(file, path), model.model.state_dict(keep_vars=True))
        file.seek(0)
        data = file.read()
    try:
        weights = load(data)
    except SafetensorError as error:
        raise CheckpointError(f"{path}: cannot be read as safetensors ({error})") from None
    del data
    for key, tensor in sorted(weights.items()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{path}: {key} holds {bad} NaN or infinite values of {tensor.numel()}; a trained model has none"
            )
    state = {f"model.{key}": value for key, value in weights.items()}
    expected = model.state_dict()
    if export.grid_positions_in:  # added into that table: zero row and column embeddings add nothing more
        state.update({key: torch.zeros_like(tensor) for key, tensor in expected.items() if ".grid_positions." in key})
    for key, tensor in expected.items():  # save_pretrained leaves out weights tied to another (GPT-2's lm_head)
        if key not in state:
            tied = [other for other in state if other in expected and expected[other].data_ptr() == tensor.data_ptr()]
            state.update({key: state[tied[0]]} if tied else {})
    check_checkpoint({"state_dict": state, "hyper_parameters": export.hparams}, model, hp, str(folder))
    model.load_state_dict(state)


def check_weights_header(export: ExportedModel) -> None:
    """Checks every size ``pixel_lm.json`` sets against ``model.safetensors``' own tensor shapes, before a model
    is built from them: a tampered ``n_embd`` of 16384 asked ~100 GB, an ``n_layer`` of 200000 built for minutes.

    Reads the weights file's header only (bounded), then builds the causal LM on the meta device (no
    memory, no random numbers) once the layers are known to be as many as the file holds and at most
    :data:`MAX_LAYERS`, and compares the two tensor by tensor. The header's shapes account for every byte
    of the file, so the model built afterwards takes no more memory than the file holds.
    """
    settings, path = export.folder / SETTINGS_FILE, export.folder / WEIGHTS_FILE
    with _opened(path) as file:
        header = _weights_header(file, path)
    try:
        config = build_config(export.model_type, export.model_config, export.vocab_size, export.seq_len)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{settings}: {str(error).splitlines()[0]}") from None
    key = f"model_config.{config.attribute_map.get('num_hidden_layers', 'num_hidden_layers')}"
    layers = getattr(config, "num_hidden_layers", None)
    if isinstance(layers, int):
        if not 1 <= layers <= MAX_LAYERS:
            raise CheckpointError(f"{settings}: {key} must be 1 to {MAX_LAYERS}, got {_shown(layers)}")
        # A layer's tensors are named by its index, the first number in their names ("model.layers.3.mlp...").
        indices = {next((int(part) for part in name.split(".") if part.isdigit()), -1) for name in header} - {-1}
        if layers != len(indices):
            raise CheckpointError(
                f"{settings}: {key} {layers} does not fit {path}, which holds the tensors of "
                f"{len(indices)} layer{'s' if len(indices) != 1 else ''}"
            )
    try:
        with torch.device("meta"):
            causal_lm = build_causal_lm(
                export.model_type,
                export.model_config,
                export.vocab_size,
                export.seq_len,
                grid_positions=export.grid_positions,
                image_width=export.image_width,
            )
    except (ValueError, TypeError, ArithmeticError, RuntimeError) as error:
        raise CheckpointError(
            f"{settings}: model_config does not build a {export.model_type} model ({str(error).splitlines()[0]})"
        ) from None
    _check_fit(export, header, causal_lm.state_dict(keep_vars=True))


def _weights_header(file: BinaryIO, path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each tensor's dtype name and shape, from the header of the safetensors file ``file`` (at its start).

    The format: 8 bytes, little-endian, the header's length N; N bytes of JSON, ``{name: {"dtype", "shape",
    "data_offsets": [begin, end]}}`` (offsets into the data after the header); then the data. Read here
    rather than by safetensors, whose ``safe_open`` maps the whole file (and blocks on a FIFO): the header
    is bounded by :data:`MAX_HEADER_BYTES` and each tensor's bytes must match its dtype and shape, and
    the file's size the header's, so that the shapes checked are what the data holds.
    """
    size = os.fstat(file.fileno()).st_size
    head = file.read(8)
    length = int.from_bytes(head, "little") if len(head) == 8 else -1
    if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
        raise CheckpointError(f"{path}: is not a safetensors file (its first 8 bytes give no header length that fits)")
    try:
        header = json.loads(file.read(length).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path}: is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: is not a safetensors file (its header is no JSON object)")
    tensors, end = {}, 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        entry = entry if isinstance(entry, dict) else {}
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{path}: {name} is stored as {_shown(dtype)}, not a dtype this project reads")
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)) or not (
            isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)
        ):
            raise CheckpointError(f"{path}: {name} has no shape and data_offsets of whole numbers in the header")
        nbytes = math.prod(shape) * SAFETENSORS_DTYPES[dtype].itemsize
        if not 0 <= offsets[0] <= offsets[1] or offsets[1] - offsets[0] != nbytes:
            raise CheckpointError(
                f"{path}: {name} is {dtype} of shape {_shown(shape)}, {_shown(nbytes)} bytes, "
                f"but its data_offsets span {_shown(offsets[1] - offsets[0])}"
            )
        tensors[name] = (dtype, tuple(shape))
        end = max(end, offsets[1])
    if 8 + length + end != size:
        raise CheckpointError(f"{path}: holds {size} bytes, its header accounts for {8 + length + end}")
    return tensors


def _check_fit(
    export: ExportedModel, header: dict[str, tuple[str, tuple[int, ...]]], expected: dict[str, torch.Tensor]
) -> None:
    """Raises a one-line :class:`CheckpointError` unless ``header`` (the weights file's) holds each tensor of the
    causal LM's ``expected`` state (``state_dict(keep_vars=True)``, so tied weights are one object) with its
    shape and a dtype of its kind, and nothing else."""
    settings, path = export.folder / SETTINGS_FILE, export.folder / WEIGHTS_FILE
    if export.grid_positions_in:  # added into the position table: not in the file
        expected = {key: tensor for key, tensor in expected.items() if ".grid_positions." not in key}
    stored = [tensor for key, tensor in expected.items() if key in header]
    # save_pretrained leaves out a weight tied to one it writes (GPT-2's lm_head, its token embedding)
    missing = [key for key, tensor in expected.items() if key not in header and not any(tensor is t for t in stored)]
    unexpected = [key for key in header if key not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{settings}: its {export.model_type} model does not fit {path}: {len(missing)} tensors missing, "
            f"{len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]}"
        )
    resized = {key: shape for key, (_, shape) in header.items() if shape != tuple(expected[key].shape)}
    if resized:
        sizes = {f"model_config.{name}": value for name, value in export.model_config.items() if type(value) is int}
        sizes.update(vocab_size=export.vocab_size, seq_len=export.seq_len)

        def culprits(key: str) -> list[str]:  # the settings whose value makes the model's shape differ
            model_shape = tuple(expected[key].shape)
            return [
                f"{name} {value}" for name, value in sizes.items() if value in model_shape and value not in resized[key]
            ]

        key = next((key for key in resized if culprits(key)), next(iter(resized)))
        named = culprits(key)
        what = f"{', '.join(named)} {'does' if len(named) == 1 else 'do'}" if named else "its sizes do"
        raise CheckpointError(
            f"{settings}: {what} not fit {path}: {key} is {list(resized[key])} there, "
            f"{list(expected[key].shape)} by {SETTINGS_FILE}"
        )
    for key, (dtype, _) in header.items():
        model_dtype = expected[key].dtype
        stored_dtype = SAFETENSORS_DTYPES[dtype]
        if stored_dtype.is_floating_point != model_dtype.is_floating_point or (
            not model_dtype.is_floating_point and stored_dtype != model_dtype
        ):
            raise CheckpointError(
                f"{path}: {key} is stored as {dtype}, but it is a weight of type {str(model_dtype).split('.')[-1]}: "
                "a tensor relabelled, or no weights of this model"
            )


class ExportedPixelLM(PixelLM):
    """A PixelLM with the architecture of an exported folder: what ``--ckpt_path FOLDER`` without ``--config`` builds.

    Built from ``pixel_lm.json``; the CLI then loads the folder's weights and checks its palette.

    Args:
        folder: The folder ``export.py`` wrote.
        vocab_size: Palette size; linked from the data module, and must be the folder's.
        seq_len: Tokens per image; linked from the data module, and must be the folder's.
        prefix_len: Tokens given at test time; linked from the data module, and must be the folder's.
        decoding: How predictions are decoded (default: the folder's settings).
    """

    def __init__(
        self,
        folder: str,
        vocab_size: int = 167,
        seq_len: int = 400,
        prefix_len: int = 240,
        decoding: Decoding | None = None,
    ) -> None:
        export = read_export(folder)
        given = {"vocab_size": vocab_size, "seq_len": seq_len, "prefix_len": prefix_len}
        for key, value in given.items():
            if export.hparams[key] != value:
                raise CheckpointMismatchError(
                    f"{folder}: the exported model has {key} {export.hparams[key]}, the data {value}"
                )
        check_weights_header(export)  # the sizes the model is built with, before it takes their memory
        decoding = decoding or export.decoding
        super().__init__(
            model_type=export.model_type, model_config=export.model_config, decoding=decoding, **export.layout, **given
        )
        # A PixelLM's hyperparameters, not this constructor's (what describe() and error messages read).
        self.save_hyperparameters({**export.hparams, **export.layout, "decoding": decoding})

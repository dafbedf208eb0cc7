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
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

import torch

from checkpointing.loading import CheckpointError
from datamodules.pixel_files import MAX_NUMBERS, PixelFormatError
from datamodules.pixel_files import _opened as _opened_data_file
from generation.decoding import Decoding, DecodingError

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
# Seeds torch takes are 64-bit; a batch's seed is the folder's plus the index of its first image.
MAX_SEED = 2**62


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


@contextmanager
def opened_file(path: Path) -> Iterator[BinaryIO]:
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


def settings_json(path: Path) -> dict[str, Any]:
    """``pixel_lm.json`` parsed, within :data:`MAX_SETTINGS_BYTES`; a one-line error for anything but a JSON object."""
    if not os.path.lexists(path):
        raise CheckpointError(
            f"{path.parent}: is a folder without {SETTINGS_FILE}, not an exported model (export.py writes one)"
        )
    with opened_file(path) as file:
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
    data = settings_json(path)
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
        raise CheckpointError(f"{path}: seq_len must be 2 to {MAX_NUMBERS}, got {shown(seq_len)}")
    if not 1 <= prefix_len < seq_len:
        raise CheckpointError(
            f"{path}: prefix_len must be 1 to {seq_len - 1} (seq_len less one), got {shown(prefix_len)}"
        )
    if not 1 <= image_width <= seq_len or seq_len % image_width:
        raise CheckpointError(
            f"{path}: image_width {shown(image_width)} does not divide the {seq_len} pixels of an image"
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


def shown(value: Any) -> str:
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
            raise CheckpointError(f"{path}: decoding.{key} = {shown(value)} is not a Decoding setting")
        if kind == (int, float) and isinstance(value, int) and value.bit_length() > 1023:  # float() would overflow
            raise CheckpointError(f"{path}: decoding.{key} = {shown(value)} is too large for a number of its kind")
    if not -MAX_SEED <= values.get("seed", 0) <= MAX_SEED:  # torch.manual_seed takes 64 bits
        raise CheckpointError(f"{path}: decoding.seed: must be within ±2**62, got {shown(values['seed'])}")
    try:
        return Decoding(**values)
    except DecodingError as error:
        raise CheckpointError(f"{path}: {error}") from None


def decoding_args(export: ExportedModel) -> list[str]:
    """The folder's decoding as command-line options, so that options given after them override one setting each."""
    return [f"--model.init_args.decoding.{key}={json.dumps(value)}" for key, value in asdict(export.decoding).items()]

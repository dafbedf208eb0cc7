"""A trained PixelLM as a folder that cannot carry code: JSON and safetensors only, never a pickle.

``export.py`` writes it: Hugging Face's ``save_pretrained`` of the inner causal LM (``config.json``,
``model.safetensors``, ``generation_config.json``) plus ``pixel_lm.json`` with what this project
needs besides (architecture, sizes, palette, decoding). ``predict.py`` and ``evaluate.py`` take the
folder as ``--ckpt_path``. Reading it runs ``json.loads`` and safetensors' loader, nothing else; the
architecture is built from ``pixel_lm.json`` in Python, never handed to the config parser, which
would build any ``class_path`` it met inside a value.
"""

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from checkpointing.loading import CheckpointError
from checkpointing.checkpoint_check import CheckpointMismatchError, check_checkpoint, describe
from generation.decoding import Decoding
from lightning_modules.pixel_lm import PixelLM

SETTINGS_FILE = "pixel_lm.json"
WEIGHTS_FILE = "model.safetensors"  # what save_pretrained writes for a model of one shard
FORMAT = "pokemon-pixel-lm"
VERSION = 1


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


def export_pixel_lm(model: PixelLM, palette: torch.Tensor, out: str | Path, overwrite: bool = False) -> Path:
    """Writes ``model`` (its weights as they are now) and ``palette`` to the folder ``out``, atomically.

    The folder is built beside ``out`` and renamed into place, so ``out`` is never half written.
    An existing non-empty ``out`` is replaced only with ``overwrite``.
    """
    from transformers.utils import logging

    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not overwrite:
        raise CheckpointError(f"{out}: exists and is not empty; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: the folder {out.parent} does not exist")
    building = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        logging.disable_progress_bar()  # "Writing model shards" for a file of a few MB
        model.model.save_pretrained(building)  # safetensors, never pickle
        hp = model.hparams
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
        }
        (building / SETTINGS_FILE).write_text(_settings_text(settings, palette))
        os.chmod(building, 0o777 & ~_umask())  # mkdtemp makes 0700; the folder should look like any other
        for file in building.iterdir():
            os.chmod(file, 0o666 & ~_umask())  # and safetensors writes 0600
        _move_into_place(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return out


def _settings_text(settings: dict[str, Any], palette: torch.Tensor) -> str:
    """``settings`` as indented JSON, with the palette last and one colour a line."""
    head = json.dumps(settings, indent=1)[: -len("\n}")]
    colours = ",\n".join(f"  {json.dumps(colour)}" for colour in palette.tolist())
    return f'{head},\n "palette": [\n{colours}\n ]\n}}\n'


def _move_into_place(building: Path, out: Path) -> None:
    if not out.exists():
        os.rename(building, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    os.rename(out, old / out.name)
    os.rename(building, out)
    shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_export(folder: str | Path) -> ExportedModel:
    """The checked settings of an exported folder; a one-line :class:`CheckpointError` for anything amiss."""
    folder = Path(folder)
    path = folder / SETTINGS_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder}: is a folder without {SETTINGS_FILE}, not an exported model (export.py writes one)")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: is not valid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise CheckpointError(f"{path}: is not a {FORMAT} file of version {VERSION}")

    def field(key: str, kind: type | tuple[type, ...]):
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise CheckpointError(f"{path}: {key} is missing or not a {getattr(kind, '__name__', kind)}")
        return value

    vocab_size = field("vocab_size", int)
    palette = field("palette", list)
    if len(palette) != vocab_size or not all(_is_colour(colour) for colour in palette):
        raise CheckpointError(f"{path}: palette is not {vocab_size} [R, G, B] colours of 0..255")
    return ExportedModel(
        folder=folder,
        model_type=field("model_type", str),
        model_config=field("model_config", dict),
        vocab_size=vocab_size,
        seq_len=field("seq_len", int),
        prefix_len=field("prefix_len", int),
        palette=torch.tensor(palette, dtype=torch.uint8),
        decoding=_decoding(field("decoding", dict), path),
        grid_positions=field("grid_positions", bool) if "grid_positions" in data else False,
        image_width=field("image_width", int) if "image_width" in data else 20,
    )


def _is_colour(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(type(c) is int and 0 <= c <= 255 for c in value)


def _decoding(values: dict[str, Any], path: Path) -> Decoding:
    types = {f.name: f.type for f in fields(Decoding)}
    for key, value in values.items():
        kind = {bool: bool, float: (int, float), int: int}.get(types.get(key))
        if kind is None or not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise CheckpointError(f"{path}: decoding.{key} = {value!r} is not a Decoding setting")
    return Decoding(**values)


def decoding_args(export: ExportedModel) -> list[str]:
    """The folder's decoding as command-line options, so that options given after them override one setting each."""
    return [f"--model.init_args.decoding.{key}={json.dumps(value)}" for key, value in asdict(export.decoding).items()]


def load_exported_weights(model: PixelLM, folder: str | Path, palette: torch.Tensor | None = None) -> None:
    """Loads the folder's safetensors into ``model`` after checking architecture, sizes and palette (one line each)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

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
            raise CheckpointMismatchError(f"{folder}: the exported model has {key} {export.layout[key]}, the config {configured[key]}")
    if palette is not None and export.palette.shape != palette.shape:
        raise CheckpointMismatchError(f"{folder}: its palette has {len(export.palette)} colours, the data's {len(palette)}")
    if palette is not None and not torch.equal(export.palette, palette.to(torch.uint8)):
        index = int((export.palette != palette).any(dim=1).nonzero()[0])
        raise CheckpointMismatchError(
            f"{folder}: its palette differs from the data's at colour {index} "
            f"({export.palette[index].tolist()} there, {palette[index].tolist()} in the data's colormap)"
        )
    try:
        weights = load_file(folder / WEIGHTS_FILE)
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{folder / WEIGHTS_FILE}: cannot be read as safetensors ({error})") from None
    state = {f"model.{key}": value for key, value in weights.items()}
    expected = model.state_dict()
    for key, tensor in expected.items():  # save_pretrained leaves out weights tied to another (GPT-2's lm_head)
        if key not in state:
            tied = [other for other in state if other in expected and expected[other].data_ptr() == tensor.data_ptr()]
            state.update({key: state[tied[0]]} if tied else {})
    check_checkpoint({"state_dict": state, "hyper_parameters": export.hparams}, model, hp, str(folder))
    model.load_state_dict(state)


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
                raise CheckpointMismatchError(f"{folder}: the exported model has {key} {export.hparams[key]}, the data {value}")
        decoding = decoding or export.decoding
        super().__init__(
            model_type=export.model_type, model_config=export.model_config, decoding=decoding, **export.layout, **given
        )
        # A PixelLM's hyperparameters, not this constructor's (what describe() and error messages read).
        self.save_hyperparameters({**export.hparams, **export.layout, "decoding": decoding})

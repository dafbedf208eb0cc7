"""``export.py``'s writing: a PixelLM as an exported folder (:mod:`checkpointing.export_format`), atomically."""

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from checkpointing.export_format import (
    CARD_FILE,
    CONFIG_FILE,
    EXPORTED_FILES,
    FORMAT,
    POSITION_TABLES,
    REFUSED_MODEL_TYPE,
    SETTINGS_FILE,
    VERSION,
    settings_json,
)
from checkpointing.loading import CheckpointError
from checkpointing.model_card import model_card
from generation.decoding import Decoding
from lightning_modules.causal_chunks import CHUNKS_KEY
from lightning_modules.pixel_lm import PixelLM


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
        return settings_json(path).get("format") == FORMAT
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

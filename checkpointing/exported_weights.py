"""An exported folder's ``model.safetensors``, checked before and while it is read: sizes against its header, then
the header against the model, then the values."""

import json
import math
import os
from pathlib import Path
from typing import BinaryIO

import torch

from checkpointing.checkpoint_check import CheckpointMismatchError, check_checkpoint, describe
from checkpointing.export_format import SETTINGS_FILE, WEIGHTS_FILE, ExportedModel, opened_file, read_export, shown
from checkpointing.loading import CheckpointError
from lightning_modules.architecture import build_causal_lm, build_config
from lightning_modules.pixel_lm import PixelLM

# safetensors' header is JSON of about 100 bytes a tensor; a 256-layer Llama has about 2,300 tensors.
MAX_HEADER_BYTES = 16 << 20
# Layers the model may have: building one takes time even without memory (1,000 take about 10 s on the
# meta device), and no model of 20 x 20 images needs more (GPT-2 XL has 48).
MAX_LAYERS = 256
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
    with opened_file(path) as file:
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
    with opened_file(path) as file:
        header = _weights_header(file, path)
    try:
        config = build_config(export.model_type, export.model_config, export.vocab_size, export.seq_len)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{settings}: {str(error).splitlines()[0]}") from None
    key = f"model_config.{config.attribute_map.get('num_hidden_layers', 'num_hidden_layers')}"
    layers = getattr(config, "num_hidden_layers", None)
    if isinstance(layers, int):
        if not 1 <= layers <= MAX_LAYERS:
            raise CheckpointError(f"{settings}: {key} must be 1 to {MAX_LAYERS}, got {shown(layers)}")
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
            raise CheckpointError(f"{path}: {name} is stored as {shown(dtype)}, not a dtype this project reads")
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)) or not (
            isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)
        ):
            raise CheckpointError(f"{path}: {name} has no shape and data_offsets of whole numbers in the header")
        nbytes = math.prod(shape) * SAFETENSORS_DTYPES[dtype].itemsize
        if not 0 <= offsets[0] <= offsets[1] or offsets[1] - offsets[0] != nbytes:
            raise CheckpointError(
                f"{path}: {name} is {dtype} of shape {shown(shape)}, {shown(nbytes)} bytes, "
                f"but its data_offsets span {shown(offsets[1] - offsets[0])}"
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

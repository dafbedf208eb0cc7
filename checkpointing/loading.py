"""The one way this project reads a checkpoint: weights-only, so a file from elsewhere cannot run code.

A ``.ckpt`` is a pickle, and a pickle can name any function for the reader to call. ``torch.load``
with ``weights_only=True`` only rebuilds tensors, containers and plain values, plus the few project
types allow-listed here; anything else is refused before it is called. Every refusal is a
:class:`CheckpointError` with one line saying which file and why.
"""

import io
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Literal

import torch
from torch.serialization import get_unsafe_globals_in_checkpoint, safe_globals

from checkpointing.checkpoint_check import check_checkpoint
from generation.decoding import Decoding
from lightning_modules.classifier import PokemonClassifier
from lightning_modules.pixel_lm import PixelLM

# The only non-torch types a checkpoint of this project may hold. Checkpoints written through the CLI
# store PixelLM's ``decoding`` as a dict; a PixelLM built in Python with ``Decoding(...)`` stores the
# dataclass. Nothing else in a tiny, llama-shaped or classifier checkpoint needs allowing (checked
# with torch.serialization.get_unsafe_globals_in_checkpoint; tests/test_checkpoint_safety.py).
# Decoding lived in lightning_modules/decoding.py until 2026-12-04: checkpoints saved then name it there.
PROJECT_TYPES = [Decoding, (Decoding, "lightning_modules.decoding.Decoding")]

Kind = Literal["PixelLM", "PokemonClassifier"]
MODELS: dict[Kind, type[PixelLM | PokemonClassifier]] = {"PixelLM": PixelLM, "PokemonClassifier": PokemonClassifier}


class CheckpointError(ValueError):
    """A file that is not a checkpoint this project can load; the message names the file and the reason."""


def load_checkpoint(path: str | Path, kind: Kind | None = None) -> dict[str, Any]:
    """The checkpoint dict at ``path``, loaded weights-only on the CPU; ``kind`` also checks what it holds.

    Raises :class:`FileNotFoundError` for a missing file and :class:`CheckpointError` for a file that
    holds code, is empty, truncated or no checkpoint, or is a checkpoint of another kind of model.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: is empty (0 bytes), not a checkpoint")
    try:
        with safe_globals(PROJECT_TYPES), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected pickle protocol")  # a plain pickle; refused below anyway
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises half a dozen types here, none of them saying "bad file"
        raise CheckpointError(f"{path}: {_why_unreadable(path, error)}") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(f"{path}: is not a Lightning checkpoint (it holds no state_dict)")
    found = checkpoint_kind(checkpoint)
    if kind is not None and found != kind:
        held = f"a {found} checkpoint" if found else "a checkpoint of another model"
        raise CheckpointError(f"{path}: is {held}, not a {kind}")
    return checkpoint


def checkpoint_kind(checkpoint: dict[str, Any]) -> Kind | None:
    """Which of the project's models a checkpoint holds, told by its tensors (None: neither)."""
    keys = checkpoint["state_dict"].keys()
    if "palette" in keys and "bigram" in keys:
        return "PokemonClassifier"
    if any(key.startswith("model.") for key in keys):
        return "PixelLM"
    return None


def _why_unreadable(path: Path, error: Exception) -> str:
    code = refused_globals(path, error)
    if code:
        return f"refused: it holds code ({', '.join(code)}), and checkpoints are loaded weights-only"
    if zipfile.is_zipfile(path):
        return "is a zip archive but not a checkpoint, or a damaged one"
    with open(path, "rb") as file:
        zip_start = file.read(4) == b"PK\x03\x04"  # torch.save's format, without the end of the archive
    if zip_start or isinstance(error, EOFError):
        return "is truncated (it ends before the checkpoint does): copy or save it again"
    return "is not a checkpoint (torch.load cannot read it)"


def refused_globals(path: Path, error: Exception) -> list[str]:
    """The functions or classes a file asks the unpickler for that weights-only loading refuses; none are run."""
    if not isinstance(error, pickle.UnpicklingError):
        return []
    named = re.findall(r"GLOBAL ([\w.]+)", str(error))
    try:
        with safe_globals(PROJECT_TYPES):
            found = get_unsafe_globals_in_checkpoint(path)  # a zip checkpoint, as torch.save writes them
    except Exception:  # an old-format or plain pickle: torch named the first, else read its opcodes (runs nothing)
        safe = ("torch.", "collections.", "_codecs.")
        found = named or [name for name in _pickled_globals(path.read_bytes()) if not name.startswith(safe)]
    return list(dict.fromkeys(named + found))


def _pickled_globals(data: bytes) -> list[str]:
    """``module.name`` of every global the pickles in ``data`` (one after another) refer to."""
    names, stream = [], io.BytesIO(data)
    while stream.tell() < len(data):
        strings: list[str] = []
        try:
            for opcode, arg, _ in pickletools.genops(stream):
                if opcode.name in ("GLOBAL", "INST"):
                    names.append(".".join(str(arg).split(" ", 1)))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(".".join(strings[-2:]))
                elif isinstance(arg, str):
                    strings.append(arg)
        except Exception:  # the rest is not a pickle (tensor bytes of the old format)
            break
    return names


def load_weights(module: PixelLM | PokemonClassifier, path: str | Path) -> None:
    """Loads the checkpoint at ``path`` into ``module``, after checking that it holds the same kind of model
    and that its tensors fit (one-line errors)."""
    kind = next(kind for kind, model in MODELS.items() if isinstance(module, model))
    load_weights_from(module, load_checkpoint(path, kind), path)


def init_args(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The module's constructor arguments saved in the checkpoint (LightningCLI's ``_class_path`` & co. left out)."""
    saved = checkpoint.get("hyper_parameters")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: holds no hyper_parameters to build the model from")
    return {key: value for key, value in saved.items() if not key.startswith("_")}


def load_pixel_lm(path: str | Path) -> PixelLM:
    """The PixelLM of a checkpoint, built from its hyperparameters and weights (weights-only), in eval mode."""
    return load_model(path, "PixelLM")


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> PokemonClassifier:
    """The PokemonClassifier of a checkpoint (palette and bigram included), weights-only, in eval mode, on ``device``:
    the PDR judge, the classifier-feature FID and the best-of-N reranker."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} does not exist (train one: python train.py --config configs/classifier.yaml)")
    return load_model(path, "PokemonClassifier").to(device)


def load_model(path: str | Path, kind: Kind) -> PixelLM | PokemonClassifier:
    """The ``kind`` model of a checkpoint, built from its hyperparameters and weights (weights-only), in eval mode."""
    checkpoint = load_checkpoint(path, kind)
    args = init_args(checkpoint, path)
    if isinstance(args.get("decoding"), dict):  # the CLI saves PixelLM's Decoding dataclass as a dict
        args["decoding"] = Decoding(**args["decoding"])
    try:
        model = MODELS[kind](**args)
    except TypeError as error:  # hyperparameters of another version of the class
        raise CheckpointError(f"{path}: its hyper_parameters do not fit {kind} ({error})") from None
    load_weights_from(model, checkpoint, path)
    return model.eval()


def load_weights_from(module: torch.nn.Module, checkpoint: dict[str, Any], path: str | Path) -> None:
    # check_checkpoint names the architectures; load_state_dict would list dozens of tensor names.
    check_checkpoint(checkpoint, module, getattr(module, "hparams", {}), str(path))
    module.load_state_dict(checkpoint["state_dict"])

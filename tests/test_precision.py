"""GPU speed switches (mixed precision, torch.compile) must still run on a CPU-only machine."""

import pytest
import torch

from lightning_modules import PixelLM


def test_bf16_mixed_trains_on_cpu(train_tiny, tmp_path):
    train_tiny("--trainer.precision=bf16-mixed", "--trainer.max_steps=2")
    checkpoint = torch.load(tmp_path / "runs/version_0/checkpoints/last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 2
    assert checkpoint["state_dict"]["model.lm_head.weight"].dtype == torch.float32  # weights stay fp32


@pytest.mark.slow  # torch.compile builds C++ kernels on CPU: about a minute
def test_compiled_model_trains_and_loads_uncompiled(train_tiny, tmp_path):
    train_tiny("--model.init_args.compile=true", "--trainer.max_steps=2")
    path = tmp_path / "runs/version_0/checkpoints/last.ckpt"
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint["global_step"] == 2
    assert all(key.startswith("model.") for key in checkpoint["state_dict"])  # no compiled-wrapper keys
    model = PixelLM.load_from_checkpoint(path)
    assert model.hparams.compile
    images = model.complete(torch.zeros(2, 240, dtype=torch.long))  # generation runs the uncompiled model
    assert images.shape == (2, 400)

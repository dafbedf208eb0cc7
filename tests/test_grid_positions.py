"""Row and column embeddings (model.init_args.grid_positions): used the same way in training and generation."""

import pytest
import torch

from conftest import TINY
from datamodules.pixel_files import read_images
from entry_points import assert_error, run
from generation.decoding import Decoding
from lightning_modules import PixelLM
from tiny_models import ARCHITECTURES, tiny_model


def grid_model(model_type: str) -> PixelLM:
    model = tiny_model(model_type, grid_positions=True, image_width=8).eval()
    with torch.no_grad():  # large row/column embeddings, so any position off by one changes the argmax
        for table in model.model.base_model.grid_positions.parameters():
            table.normal_(0, 2)
    return model


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_cached_generation_sees_the_positions_of_training(model_type):
    """Greedy completion (KV cache, one position per step) is the argmax of the teacher-forced pass at every pixel."""
    model = grid_model(model_type)
    prefixes = torch.randint(0, 167, (5, 24))
    with torch.inference_mode():
        completed = model.complete(prefixes, Decoding())
        logits = model(completed[:, :-1])
    assert torch.equal(logits.argmax(-1)[:, 23:], completed[:, 24:])


def test_grid_embeddings_are_weights_of_the_model():
    model = grid_model("llama")
    keys = [key for key in model.state_dict() if "grid_positions" in key]
    assert keys == ["model.model.grid_positions.row.weight", "model.model.grid_positions.column.weight"]
    assert model.model.base_model.grid_positions.row.num_embeddings == 5  # 40 pixels, 8 a row
    tokens = torch.randint(0, 167, (2, 39))
    with torch.inference_mode():
        before = model(tokens)
        model.model.base_model.grid_positions.column.weight.zero_()
        assert not torch.allclose(before, model(tokens))


def test_image_width_must_divide_the_image():
    with pytest.raises(ValueError, match="model.image_width: 7 does not divide the 40 pixels"):
        PixelLM(model_type="gpt2", model_config=ARCHITECTURES["gpt2"], seq_len=40, grid_positions=True, image_width=7)


def test_train_export_predict_with_grid_positions(tmp_path, small_data):
    """The embeddings are trained, kept in best.ckpt and in an exported folder: both predict the same file."""
    runs = tmp_path / "runs"
    grid = "--model.init_args.grid_positions=true"
    run("train.py", "--config", str(TINY), "--trainer.default_root_dir", str(runs),
               "--data.data_dir", str(small_data), "--trainer.max_steps=3", grid)  # fmt: skip
    checkpoint = runs / "version_0" / "checkpoints" / "best.ckpt"
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert state["model.transformer.grid_positions.row.weight"].shape == (20, 16)
    run(
        "export.py",
        "--ckpt_path",
        str(checkpoint),
        "--trainer.default_root_dir",
        str(runs),
        "--out",
        str(tmp_path / "exported"),
    )
    outputs = {}
    for name, source in (("ckpt", ("--config", str(TINY), grid, "--ckpt_path", str(checkpoint))),
                         ("exported", ("--ckpt_path", str(tmp_path / "exported")))):  # fmt: skip
        outputs[name] = tmp_path / f"{name}.txt"
        run("predict.py", *source, "--data.data_dir", str(small_data), "--output", str(outputs[name]),
                   "--model.init_args.decoding.do_sample=false")  # fmt: skip
    assert outputs["ckpt"].read_bytes() == outputs["exported"].read_bytes()
    assert read_images(outputs["ckpt"], 400, 167).shape == (16, 400)
    # A config without the embeddings is refused by name, not with a list of missing tensors.
    result = run("predict.py", "--config", str(TINY), "--ckpt_path", str(tmp_path / "exported"),
                        "--data.data_dir", str(small_data), "--output", str(tmp_path / "x.txt"), check=False)  # fmt: skip
    assert_error(result, "grid_positions True, the config False")

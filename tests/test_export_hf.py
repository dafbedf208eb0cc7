"""An exported folder is a faithful Hugging Face model: plain ``transformers`` draws what predict.py draws, or refuses.

A user loads the folder with ``AutoModelForCausalLM.from_pretrained``, seeds torch and calls ``generate``
with nothing else: the folder's ``generation_config.json`` decides how it decodes. That must give the
tokens ``predict.py --ckpt_path FOLDER`` writes (one batch, the same seed, best_of 1), and a model whose
row and column embeddings transformers cannot run must not load at all.
"""

import json

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

import export
import predict
from checkpointing import load_checkpoint
from checkpointing.export_writer import export_pixel_lm
from datamodules.pixel_files import read_images, read_palette
from generation.decoding import Decoding
from lightning_modules import PixelLM
from tiny_models import ARCHITECTURES

DECODINGS = {
    "greedy": Decoding(seed=4),
    # temperature, then top-k, then top-p: the order in which both paths apply them
    "filtered": Decoding(do_sample=True, temperature=0.8, top_k=20, top_p=0.9, seed=4),
    # every colour can be drawn: generate's own default top-k (50) would cut some
    "unfiltered": Decoding(do_sample=True, temperature=1.5, top_k=0, top_p=1.0, seed=4),
}


def trained_model(model_type: str, grid_positions: bool, data, decoding: Decoding) -> PixelLM:
    """A tiny PixelLM after a few Adam steps on the training images, so its colours are no longer equally likely."""
    torch.manual_seed(0)
    model = PixelLM(
        model_type=model_type, model_config=ARCHITECTURES[model_type], grid_positions=grid_positions, decoding=decoding
    )
    images = read_images(data / "train.txt", 400, 167)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(8):
        optimizer.zero_grad()
        model.token_losses(images[step % 3 * 16 : step % 3 * 16 + 16], reduction="mean").backward()
        optimizer.step()
    return model.eval()


def predicted(folder, data, output) -> torch.Tensor:
    """What ``predict.py --ckpt_path folder`` writes for the test prefixes (all in one batch)."""
    predict.main(["--ckpt_path", str(folder), "--data.data_dir", str(data), "--output", str(output)])
    return read_images(output, 400, 167)


def generated_by_transformers(folder, prefixes: torch.Tensor, seed: int) -> torch.Tensor:
    """A plain transformers user: load the folder, seed, generate with the folder's generation_config.json."""
    model = AutoModelForCausalLM.from_pretrained(folder)
    torch.manual_seed(seed)
    return model.generate(prefixes)


# Each case costs two 160-step generations (about 10 s here); each architecture and decoding is in one.
CASES = [
    ("gpt2", False, "unfiltered"),
    ("llama", False, "greedy"),
    ("llama", False, "filtered"),
    ("gpt2", True, "filtered"),
]


@pytest.mark.parametrize("model_type, grid_positions, decoding", CASES)
def test_transformers_generates_what_predict_writes(model_type, grid_positions, decoding, small_data, tmp_path):
    model = trained_model(model_type, grid_positions, small_data, DECODINGS[decoding])
    folder = export_pixel_lm(model, read_palette(small_data / "colormap.txt"), tmp_path / "exported")
    prefixes = read_images(small_data / "test.txt")

    ours = predicted(folder, small_data, tmp_path / "completions.txt")
    theirs = generated_by_transformers(folder, prefixes, DECODINGS[decoding].seed)

    assert theirs.shape == (16, 400) and torch.equal(theirs[:, :240], prefixes)
    assert torch.equal(theirs, ours), f"{int((theirs != ours).sum())} of {ours[:, 240:].numel()} pixels differ"
    weights = load_file(folder / "model.safetensors")  # a plain model: nothing transformers would leave unused
    assert not any("grid_positions" in key for key in weights)


def test_folded_grid_positions_are_the_trained_model(small_data, tmp_path):
    """GPT-2's row and column embeddings, added into its position table, compute what the trained model computes."""
    model = trained_model("gpt2", True, small_data, Decoding())
    with torch.no_grad():  # large embeddings, so that leaving them out could not pass for rounding
        for table in model.model.base_model.grid_positions.parameters():
            table.normal_(0, 1)
    folder = export_pixel_lm(model, read_palette(small_data / "colormap.txt"), tmp_path / "exported")
    plain = AutoModelForCausalLM.from_pretrained(folder)
    assert json.loads((folder / "pixel_lm.json").read_text())["grid_positions_in"] == "transformer.wpe.weight"

    unfolded = AutoModelForCausalLM.from_pretrained(folder)  # what loading the grid tables as unexpected gave
    with torch.no_grad():
        unfolded.transformer.wpe.weight.copy_(model.model.transformer.wpe.weight)

    images = read_images(small_data / "dev.txt", 400, 167)
    with torch.inference_mode():
        trained, exported, without = model(images), plain(images).logits, unfolded(images).logits
    assert torch.allclose(exported, trained, atol=1e-4, rtol=0)
    assert not torch.allclose(without, trained, atol=1e-1, rtol=0)
    # Greedy completions of the dev prefixes by the folder and by the model it was exported from.
    torch.manual_seed(0)
    assert torch.equal(plain.generate(images[:, :240], do_sample=False), model.complete(images[:, :240], Decoding()))


def test_grid_llama_is_refused_by_transformers_and_loads_here(small_data, tmp_path):
    """Rotary positions have no table to add row and column embeddings into: transformers refuses the folder."""
    model = trained_model("llama", True, small_data, DECODINGS["filtered"])
    folder = export_pixel_lm(model, read_palette(small_data / "colormap.txt"), tmp_path / "exported")

    for load in (AutoConfig.from_pretrained, AutoModelForCausalLM.from_pretrained):
        with pytest.raises(ValueError, match="model type `pixel_lm_grid_llama` but Transformers does not recognize"):
            load(folder)
    card = ModelCard.load(folder / "README.md")
    assert (
        card.data.library_name is None and "pixel_lm_grid_llama" in card.text and "predict.py --ckpt_path" in card.text
    )
    assert "from_pretrained(folder)" not in card.text  # no recipe that cannot work

    # This project builds it from pixel_lm.json, grid embeddings included, and draws what the model draws.
    prefixes = read_images(small_data / "test.txt")
    assert torch.equal(predicted(folder, small_data, tmp_path / "completions.txt"), model.complete(prefixes))


@pytest.mark.slow  # a 3-step training run (shared with the other tests that read it)
def test_exported_run_has_card_and_decoding(lm_ckpt, small_data, tmp_path):
    out = tmp_path / "exported"
    decoding = ["do_sample=true", "top_p=0.9", "best_of=4"]
    runs = str(lm_ckpt.parent.parent.parent)  # its run's config.yaml is read only from a runs root
    where = ["--ckpt_path", str(lm_ckpt), "--trainer.default_root_dir", runs, "--data.data_dir", str(small_data)]
    where += ["--out", str(out)]
    export.main(where + [f"--model.init_args.decoding.{setting}" for setting in decoding])

    generation = GenerationConfig.from_pretrained(out)
    assert (generation.do_sample, generation.temperature, generation.top_k, generation.top_p) == (True, 1.0, 0, 0.9)
    assert generation.max_new_tokens == generation.min_new_tokens == 160
    settings = json.loads((out / "pixel_lm.json").read_text())
    assert settings["decoding"]["best_of"] == 4 and len(settings["palette"]) == 167

    card = ModelCard.load(out / "README.md")
    checkpoint = load_checkpoint(lm_ckpt)
    best = next(
        state
        for name, state in checkpoint["callbacks"].items()
        if name.startswith("ModelCheckpoint") and state["monitor"]
    )
    assert card.data.library_name == "transformers"
    for told in (
        "# Pokémon pixel model: gpt2, ",
        "167 `[R, G, B]` colours",  # the palette, and where it is
        "`palette[i]` in `pixel_lm.json`",
        f"saved in epoch {checkpoint['epoch'] + 1} after {checkpoint['global_step']} optimizer steps",
        f"Best `{best['monitor']}`: {float(best['best_model_score']):.4f}",
        str(lm_ckpt.parent.parent / "config.yaml"),  # the run's config
        "AutoModelForCausalLM.from_pretrained(folder)",
        "`decoding.best_of` 4",  # best-of-N is this project's, and the card says so
    ):
        assert told in card.text, told

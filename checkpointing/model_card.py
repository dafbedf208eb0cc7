"""An exported folder's ``README.md``: a ``huggingface_hub.ModelCard`` saying what the model is and how it was trained."""

from pathlib import Path
from typing import Any

from checkpointing.export_format import FORMAT, REFUSED_MODEL_TYPE, SETTINGS_FILE, WEIGHTS_FILE
from generation.decoding import Decoding


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
